#!/usr/bin/python3
"""bench/scale: how cost grows as work grows, each curve with its peer
measured side by side in the same run, ratios printed, one PNG per curve.

Curves (SCALE_CURVES, comma-separated, default all):
  dirsize   creates/s and stats/s against directory size, through the FUSE
            mount, vs fuse2fs and kernel ext4 on a loop device
  hosts     aggregate create/stat rate against hosts (separate vmfsmount
            processes, host=hN, on one image), separate dirs and one shared
            dir; ext4 and fuse2fs with the same number of processes on one
            mount as single-machine references
  lock      lock acquisitions and hand-offs/s against contending hosts,
            lockmgr (bench/lock/lm_bench) vs sanlock (bench/lock/sanlock_bench.py)
  takeover  dead-host takeover time against the heartbeat timeout (kill -9 of
            a vmfsmount holding a file open for writing, until another mount
            opens it for writing); sanlock's takeover from the lock curve's run
  fsck      vmfsctl fsck -n time against file count and volume size vs
            e2fsck -f -n on ext4 holding the same files
  mount     vmfsmount time to mounted against the number of dead heartbeat
            slots (hosts killed with SIGKILL while holding a lock)

  scale.py OUT_DIR    (writes OUT_DIR/scale.md, OUT_DIR/scale-CURVE.png)

Sizes (defaults keep the whole run to about 10-15 minutes on 2 cores):
  SCALE_DIR_SIZES=1000,10000,100000  (SCALE_DIR_1M=1 adds 1000000)
  SCALE_STAT_SAMPLE=2000             stats per point (random names)
  SCALE_DIR_MAX_S=240                seconds of creates per system at most
                                     (the curve then ends at the size reached)
  SCALE_HOSTS=1,2,4,8  SCALE_HOSTS_FILES=200 (files per host per mode)
  SCALE_LOCK_HOSTS=1,2,4,8  SCALE_LOCK_SECS=3
  SCALE_SANLOCK_IOTO=2 (io_timeouts, e.g. 2,5,10: one sanlock takeover each,
                       79-151 s per PEERS.md)  SCALE_SANLOCK_TAKEOVER=1
  SCALE_TAKEOVER_MS=2000,4000,8000   heartbeat timeouts (interval = timeout/8)
  SCALE_FSCK_FILES=100,1000,3000 (on SCALE_FSCK_BASE=8G)
  SCALE_FSCK_SIZES=1G,8G,64G (with SCALE_FSCK_SIZE_FILES=1000 files)
  SCALE_DEAD=0,1,4,16                dead slots before the mount
"""
import errno
import json
import multiprocessing as mp
import os
import platform
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402

BUILD = os.environ.get("VMFS_BUILD", os.path.join(os.path.dirname(os.path.dirname(HERE)), "build"))
VMFSCTL = os.path.join(BUILD, "fuse-tools", "vmfsctl")
VMFSMOUNT = os.path.join(BUILD, "fuse-tools", "vmfsmount")
LMB = os.path.join(BUILD, "bench", "lock", "lm_bench")
ALL = ["dirsize", "hosts", "lock", "takeover", "fsck", "mount"]


def env_list(name, default, conv=int):
    return [conv(x) for x in os.environ.get(name, default).split(",") if x.strip()]


def size_bytes(s):
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


def log(*a):
    print("  [scale %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- cleanup
# Everything this script starts is recorded here and stopped by PID (never by
# name); every FUSE mount is unmounted lazily; loop devices are detached.
PROCS = []
MOUNTS = []
LOOPS = []


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


MAIN_PID = os.getpid()


def on_signal(signum, frame):
    """SIGTERM/SIGINT: stop everything started here (by PID), unmount,
    detach, remove the scratch directory, exit. Forked workers just exit."""
    if os.getpid() != MAIN_PID:
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log("signal %d: cleaning up" % signum)
    cleanup()
    if SCRATCH:
        shutil.rmtree(SCRATCH[0], ignore_errors=True)
    os._exit(128 + signum)


SCRATCH = []


def cleanup():
    for c in mp.active_children():
        c.kill()
        c.join(10)
    for p in PROCS:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=10)
            except Exception:
                pass
    for m in reversed(MOUNTS):
        if benchlib.is_mounted(m):
            subprocess.run(["fusermount3", "-u", "-z", m], stderr=subprocess.DEVNULL, timeout=30)
            if benchlib.is_mounted(m):
                subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL, timeout=30)
    for lo in LOOPS:
        subprocess.run(["losetup", "-d", lo], stderr=subprocess.DEVNULL, timeout=30)


def run(args, timeout=600, **kw):
    return subprocess.run(args, check=True, timeout=timeout, **kw)


# ---------------------------------------------------------------- mounts
def mkfs_vmfs(img, size, *opts):
    with open(img, "wb") as f:
        f.truncate(size)
    run([VMFSCTL, "mkfs", "-q", *opts, img], timeout=300)


def mount_vmfs(img, mnt, *opts):
    """vmfsmount in the foreground as a child; returns (proc, seconds to mounted)."""
    os.makedirs(mnt, exist_ok=True)
    args = [VMFSMOUNT, "-f"]
    if opts:
        args += ["-o", ",".join(opts)]
    t0 = time.monotonic()
    p = spawn(args + [img, mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    MOUNTS.append(mnt)
    benchlib.wait_mounted(mnt, p, "vmfsmount")
    return p, time.monotonic() - t0


def umount_fuse(p, mnt):
    benchlib.stop_fuse(p, mnt)


def mkfs_ext4(img, size, inodes=None, lazy=False):
    with open(img, "wb") as f:
        f.truncate(size)
    args = ["mkfs.ext4", "-q", "-F"]
    if not lazy:
        args += ["-E", "lazy_itable_init=0,lazy_journal_init=0"]
    if inodes:
        args += ["-N", str(inodes)]
    run(args + [img], stdout=subprocess.DEVNULL, timeout=600)


def mount_fuse2fs(img, mnt):
    os.makedirs(mnt, exist_ok=True)
    p = spawn(["fuse2fs", img, mnt, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    MOUNTS.append(mnt)
    benchlib.wait_mounted(mnt, p, "fuse2fs")
    return p


EXT4_WHY = None  # why kernel ext4 on a loop device cannot run here, or None


def mount_ext4(img, mnt):
    """Returns the loop device, or None (EXT4_WHY says why)."""
    global EXT4_WHY
    os.makedirs(mnt, exist_ok=True)
    lo = subprocess.run(["losetup", "--direct-io=on", "-f", "--show", img], capture_output=True,
                        text=True, timeout=60)
    if lo.returncode:
        EXT4_WHY = "losetup not permitted: " + lo.stderr.strip()
        return None
    loop = lo.stdout.strip()
    LOOPS.append(loop)
    m = subprocess.run(["mount", loop, mnt], capture_output=True, text=True, timeout=60)
    if m.returncode:
        EXT4_WHY = "mount not permitted: " + m.stderr.strip()
        subprocess.run(["losetup", "-d", loop], timeout=30)
        LOOPS.remove(loop)
        return None
    MOUNTS.append(mnt)
    return loop


def umount_ext4(mnt, loop):
    run(["umount", mnt], timeout=120)
    MOUNTS.remove(mnt)
    run(["losetup", "-d", loop], timeout=60)
    LOOPS.remove(loop)


def have(cmd):
    return shutil.which(cmd) is not None


# ---------------------------------------------------------------- gnuplot
def plot(png, title, xlabel, ylabel, series, logx=True, logy=True, tmp=None):
    """series: [(label, [(x, y), ...])]; points with y None are left out."""
    return plot_panels(png, title, [(None, xlabel, ylabel, series)], logx, logy, tmp)


def plot_panels(png, title, panels, logx=True, logy=True, tmp=None):
    """One PNG, panels side by side: [(subtitle, xlabel, ylabel, series)]."""
    if not have("gnuplot"):
        log("gnuplot missing: no", png)
        return False
    d = tempfile.mkdtemp(dir=tmp)
    cmds = ["set terminal pngcairo noenhanced size %d,560 font 'sans,10'" % (900 if len(panels) == 1 else 1300),
            "set output '%s'" % png, "set grid", "set pointsize 1.2"]
    if len(panels) > 1:
        cmds += ["set multiplot layout 1,%d title '%s'" % (len(panels), title.replace("'", "")),
                 "set key top left"]
    else:
        cmds += ["set key outside right top"]
    cmds.append("set logscale x" if logx else "unset logscale x")
    cmds.append("set logscale y" if logy else "unset logscale y")
    drawn = False
    for pi, (sub, xlabel, ylabel, series) in enumerate(panels):
        series = [(lab, [(x, y) for x, y in pts if y is not None and (y > 0 or not logy)])
                  for lab, pts in series]
        series = [(lab, pts) for lab, pts in series if pts]
        if not series:
            continue
        cmds += ["set title '%s'" % (sub or title).replace("'", ""),
                 "set xlabel '%s'" % xlabel, "set ylabel '%s'" % ylabel]
        parts = []
        for i, (lab, pts) in enumerate(series):
            f = os.path.join(d, "p%d_s%d.dat" % (pi, i))
            with open(f, "w") as fh:
                for x, y in sorted(pts):
                    fh.write("%g %g\n" % (x, y))
            parts.append("'%s' using 1:2 with linespoints lw 2 title '%s'" % (
                f, lab.replace("'", "")))
        cmds.append("plot " + ", ".join(parts))
        drawn = True
    if len(panels) > 1:
        cmds.append("unset multiplot")
    if not drawn:
        shutil.rmtree(d, ignore_errors=True)
        return False
    r = subprocess.run(["gnuplot"], input="\n".join(cmds) + "\n", text=True, timeout=120,
                       capture_output=True)
    shutil.rmtree(d, ignore_errors=True)
    if r.returncode:
        log("gnuplot failed:", r.stderr.strip())
        return False
    return True


def fmt(v, nd=0):
    if v is None:
        return "not measured"
    return ("%%.%df" % nd) % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.3fx" % (a / b)


# ---------------------------------------------------------------- dirsize
def dir_workload(d, sizes, sample, label, cap):
    """Grows one directory through sizes; per size: creates/s over the growth
    to that size (open O_CREAT|O_EXCL + close, empty files), stats/s of
    `sample` random names at that size. Stops growing after `cap` seconds
    of creates: the last point is then the size reached ("cut")."""
    os.makedirs(d, exist_ok=True)
    out = {}
    n = 0
    rnd = random.Random(1)
    deadline = time.monotonic() + cap
    for size in sizes:
        t = time.monotonic()
        cut = False
        for i in range(n, size):
            os.close(os.open(os.path.join(d, "f%07d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o644))
            if i % 64 == 63 and time.monotonic() > deadline:
                size, cut = i + 1, True
                break
        if size == n:
            break
        cr = (size - n) / (time.monotonic() - t)
        n = size
        k = min(size, sample)
        names = [os.path.join(d, "f%07d" % rnd.randrange(size)) for _ in range(k)]
        t = time.monotonic()
        for nm in names:
            os.stat(nm)
        st = k / (time.monotonic() - t)
        out[size] = {"create": cr, "stat": st, "cut": cut}
        log("dirsize %s %d%s: %.0f creates/s, %.0f stats/s" % (
            label, size, " (time cap)" if cut else "", cr, st))
        if cut:
            break
    return out


def curve_dirsize(tmp):
    sizes = env_list("SCALE_DIR_SIZES", "1000,10000,100000")
    if os.environ.get("SCALE_DIR_1M") == "1" and 1000000 not in sizes:
        sizes.append(1000000)
    sizes.sort()
    sample = int(os.environ.get("SCALE_STAT_SAMPLE", "2000"))
    vsize = (64 << 30) if sizes[-1] > 200000 else (8 << 30)
    inodes = max(sizes[-1] * 2, 65536)
    cap = float(os.environ.get("SCALE_DIR_MAX_S", "240"))
    res = {}
    img = os.path.join(tmp, "dir-vmfs.img")
    mkfs_vmfs(img, vsize)
    p, _ = mount_vmfs(img, os.path.join(tmp, "dir-vmfs"))
    try:
        res["vmfsmount"] = dir_workload(os.path.join(tmp, "dir-vmfs", "d"), sizes, sample,
                                        "vmfsmount", cap)
    finally:
        umount_fuse(p, os.path.join(tmp, "dir-vmfs"))
        os.unlink(img)
    if have("fuse2fs"):
        img = os.path.join(tmp, "dir-f2.img")
        mkfs_ext4(img, vsize, inodes)
        p = mount_fuse2fs(img, os.path.join(tmp, "dir-f2"))
        try:
            res["fuse2fs"] = dir_workload(os.path.join(tmp, "dir-f2", "d"), sizes, sample,
                                          "fuse2fs", cap)
        finally:
            umount_fuse(p, os.path.join(tmp, "dir-f2"))
            os.unlink(img)
    img = os.path.join(tmp, "dir-ext4.img")
    mkfs_ext4(img, vsize, inodes)
    mnt = os.path.join(tmp, "dir-ext4")
    loop = mount_ext4(img, mnt)
    if loop:
        try:
            res["ext4 (loop)"] = dir_workload(os.path.join(mnt, "d"), sizes, sample, "ext4", cap)
        finally:
            umount_ext4(mnt, loop)
    os.unlink(img)
    return {"sizes": sizes, "sample": sample, "volume": vsize, "res": res, "cap": cap,
            "missing": {"fuse2fs": None if have("fuse2fs") else "fuse2fs not installed",
                        "ext4 (loop)": EXT4_WHY}}


def md_dirsize(r, outdir, tmp):
    res = r["res"]
    systems = ["vmfsmount", "fuse2fs", "ext4 (loop)"]
    xs = sorted(set(r["sizes"]) | {n for s in res.values() for n in s})
    L = ["## Creates/s and stats/s against directory size", "",
         "One directory grown to each size through each mount (%s volume/image). Creates: "
         "`open(O_CREAT|O_EXCL)` + `close` of empty files, rate over the growth from the "
         "previous size; stats: %d random names at that size (all of them below that). Each "
         "system gets at most %.0f s of creates (SCALE_DIR_MAX_S); a size marked * is where "
         "that cap stopped it." % (human(r["volume"]), r["sample"], r["cap"]), ""]
    L.append("| entries | " + " | ".join("%s creates/s | %s stats/s" % (s, s) for s in systems)
             + " |")
    L.append("|---" * (1 + 2 * len(systems)) + "|")

    def why(s):
        if s not in res:
            return "not measured (%s)" % (r["missing"].get(s) or "-")
        return "not measured (time cap)"

    for n in xs:
        cells = []
        for s in systems:
            v = res.get(s, {}).get(n)
            if v:
                cells += [fmt(v["create"]) + ("*" if v["cut"] else ""), fmt(v["stat"])]
            elif n in r["sizes"]:
                cells += [why(s), why(s)]
            else:
                cells += ["", ""]
        L.append("| %d | %s |" % (n, " | ".join(cells)))
    ours = res["vmfsmount"]
    L += ["", "Ratios, vmfsmount / peer (where both reached the size):", "",
          "| entries | " + " | ".join("create vs %s | stat vs %s" % (s, s) for s in systems[1:])
          + " |", "|---" * (1 + 2 * (len(systems) - 1)) + "|"]
    both = [n for n in xs if n in ours]
    for n in [n for n in both if any(n in res.get(s, {}) for s in systems[1:])]:
        cells = []
        for s in systems[1:]:
            v = res.get(s, {}).get(n)
            cells += [ratio(ours[n]["create"], v and v["create"]),
                      ratio(ours[n]["stat"], v and v["stat"])]
        L.append("| %d | %s |" % (n, " | ".join(cells)))
    grow = []
    for s in systems:
        if s in res and len(res[s]) >= 2:
            ks = sorted(res[s])
            lo, hi = res[s][ks[0]], res[s][ks[-1]]
            grow.append("%s %d -> %d entries: create %.2f, stat %.2f" % (
                s, ks[0], ks[-1], hi["create"] / lo["create"], hi["stat"] / lo["stat"]))
    L += ["", "Growth, rate at the largest size / at the smallest (1.0 = flat): " +
          ("; ".join(grow) or "-") + ".", ""]
    series = []
    for s in systems:
        if s in res:
            ks = sorted(res[s])
            series.append(("%s creates/s" % s, [(n, res[s][n]["create"]) for n in ks]))
            series.append(("%s stats/s" % s, [(n, res[s][n]["stat"]) for n in ks]))
    png = os.path.join(outdir, "scale-dirsize.png")
    if plot(png, "creates/s and stats/s against directory size", "entries in the directory",
            "operations/s", series, tmp=tmp):
        L += ["![creates/s and stats/s against directory size](scale-dirsize.png)", ""]
    common = [n for n in both if any(n in res.get(s, {}) for s in systems[1:])]
    hi = max(common or both)
    head = ["dirsize: at %d entries vmfsmount/fuse2fs create %s, stat %s; vmfsmount/ext4 create %s,"
            " stat %s" % (hi, *[ratio(ours[hi][k], res.get(s, {}).get(hi, {}).get(k))
                                for s in ("fuse2fs", "ext4 (loop)") for k in ("create", "stat")])]
    head += ["dirsize growth (largest/smallest size): " + "; ".join(grow)]
    return L, head


def human(b):
    for u, m in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20)):
        if b >= m and b % m == 0:
            return "%d %siB" % (b // m, u)
    return "%d B" % b


# ---------------------------------------------------------------- hosts
def host_worker(dirpath, prefix, m, barrier, q):
    barrier.wait()
    t0 = time.monotonic()
    for j in range(m):
        os.close(os.open(os.path.join(dirpath, "%s%05d" % (prefix, j)),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    t1 = time.monotonic()
    barrier.wait()  # the stat phase starts together too
    t2 = time.monotonic()
    for j in range(m):
        os.stat(os.path.join(dirpath, "%s%05d" % (prefix, j)))
    t3 = time.monotonic()
    q.put((t0, t1, t2, t3))


def parallel(dirs_prefixes, m):
    """Runs one worker per (dir, prefix), each phase started together;
    aggregate creates/s and stats/s = all files / (first start to last end)."""
    k = len(dirs_prefixes)
    barrier, q = mp.Barrier(k), mp.Queue()
    ps = [mp.Process(target=host_worker, args=(d, pre, m, barrier, q)) for d, pre in dirs_prefixes]
    for p in ps:
        p.start()
    got = [q.get(timeout=1800) for _ in ps]
    for p in ps:
        p.join(60)
    cstart, cend = min(g[0] for g in got), max(g[1] for g in got)
    sstart, send = min(g[2] for g in got), max(g[3] for g in got)
    return {"create": k * m / (cend - cstart), "stat": k * m / max(send - sstart, 1e-9)}


def curve_hosts(tmp):
    ks = env_list("SCALE_HOSTS", "1,2,4,8")
    m = int(os.environ.get("SCALE_HOSTS_FILES", "200"))
    res = {}
    img = os.path.join(tmp, "hosts.img")
    mkfs_vmfs(img, 8 << 30)
    mounts = []
    try:
        for i in range(1, max(ks) + 1):
            mnt = os.path.join(tmp, "host%d" % i)
            mounts.append((mount_vmfs(img, mnt, "host=h%d" % i)[0], mnt))
        for k in ks:
            base = "k%d" % k
            os.makedirs(os.path.join(mounts[0][1], base, "shared"))
            for i in range(k):
                os.makedirs(os.path.join(mounts[0][1], base, "h%d" % i))
            sep = parallel([(os.path.join(mounts[i][1], base, "h%d" % i), "f")
                            for i in range(k)], m)
            sh = parallel([(os.path.join(mounts[i][1], base, "shared"), "h%d_" % i)
                           for i in range(k)], m)
            res.setdefault("vmfsmount", {})[k] = {"sep": sep, "shared": sh}
            log("hosts vmfsmount %d: separate %.0f/%.0f, shared %.0f/%.0f creates/stats/s" % (
                k, sep["create"], sep["stat"], sh["create"], sh["stat"]))
    finally:
        for p, mnt in reversed(mounts):
            umount_fuse(p, mnt)
        os.unlink(img)

    def peer(name, mnt):
        for k in ks:
            base = os.path.join(mnt, "k%d" % k)
            os.makedirs(os.path.join(base, "shared"))
            for i in range(k):
                os.makedirs(os.path.join(base, "h%d" % i))
            sep = parallel([(os.path.join(base, "h%d" % i), "f") for i in range(k)], m)
            sh = parallel([(os.path.join(base, "shared"), "h%d_" % i) for i in range(k)], m)
            res.setdefault(name, {})[k] = {"sep": sep, "shared": sh}
            log("hosts %s %d: separate %.0f, shared %.0f creates/s" % (
                name, k, sep["create"], sh["create"]))

    if have("fuse2fs"):
        img = os.path.join(tmp, "hosts-f2.img")
        mkfs_ext4(img, 8 << 30)
        mnt = os.path.join(tmp, "hosts-f2")
        p = mount_fuse2fs(img, mnt)
        try:
            peer("fuse2fs", mnt)
        finally:
            umount_fuse(p, mnt)
            os.unlink(img)
    img = os.path.join(tmp, "hosts-ext4.img")
    mkfs_ext4(img, 8 << 30)
    mnt = os.path.join(tmp, "hosts-ext4")
    loop = mount_ext4(img, mnt)
    if loop:
        try:
            peer("ext4 (loop)", mnt)
        finally:
            umount_ext4(mnt, loop)
    os.unlink(img)
    return {"ks": ks, "m": m, "res": res}


def md_hosts(r, outdir, tmp):
    ks, res, m = r["ks"], r["res"], r["m"]
    systems = [s for s in ("vmfsmount", "fuse2fs", "ext4 (loop)") if s in res]
    L = ["## Aggregate metadata rate against hosts", "",
         "vmfsmount: %d vmfsmount processes (`-o host=h1..h%d`) mounted on one 8 GiB image for the "
         "whole curve; for K hosts, K of them work (the others only heartbeat), one "
         "Python process per working host creating %d empty files then stat-ing them, all started "
         "together; *separate*: each host in its own directory, *shared*: all in one directory. "
         "Aggregate = all files / wall time of the phase. No shared-disk peer runs here "
         "(GFS2/OCFS2 need a kernel cluster stack): fuse2fs and kernel ext4 are single-machine "
         "references with K processes on one mount." % (max(ks), max(ks), m), "",
         "| hosts | " + " | ".join("%s sep. creates/s | %s shared creates/s | %s sep. stats/s | "
                                  "%s shared stats/s" % (s, s, s, s) for s in systems) + " |",
         "|---" * (1 + 4 * len(systems)) + "|"]
    for k in ks:
        cells = []
        for s in systems:
            v = res[s][k]
            cells += [fmt(v["sep"]["create"]), fmt(v["shared"]["create"]), fmt(v["sep"]["stat"]),
                      fmt(v["shared"]["stat"])]
        L.append("| %d | %s |" % (k, " | ".join(cells)))
    v = res["vmfsmount"]
    k0, kn = ks[0], ks[-1]
    L += ["", "Scaling, aggregate at %d hosts / at %d: " % (kn, k0) + "; ".join(
        "%s separate %.2f, shared %.2f" % (s, res[s][kn]["sep"]["create"] / res[s][k0]["sep"]["create"],
                                           res[s][kn]["shared"]["create"] / res[s][k0]["shared"]["create"])
        for s in systems) + " (creates).", "",
        "Ratios vmfsmount / peer at %d hosts (creates, separate / shared): " % kn + "; ".join(
            "%s %s / %s" % (s, ratio(v[kn]["sep"]["create"], res[s][kn]["sep"]["create"]),
                            ratio(v[kn]["shared"]["create"], res[s][kn]["shared"]["create"]))
            for s in systems[1:]) + ".", ""]
    series = []
    for s in systems:
        series.append(("%s separate dirs" % s, [(k, res[s][k]["sep"]["create"]) for k in ks]))
        series.append(("%s one shared dir" % s, [(k, res[s][k]["shared"]["create"]) for k in ks]))
    png = os.path.join(outdir, "scale-hosts.png")
    if plot(png, "aggregate creates/s against hosts (processes)", "hosts (vmfsmount) / processes "
            "(peers)", "creates/s, all hosts", series, logx=True, logy=True, tmp=tmp):
        L += ["![aggregate creates/s against hosts](scale-hosts.png)", ""]
    head = ["hosts: vmfsmount aggregate creates/s at %d hosts / at %d: separate dirs %.2f, shared dir "
            "%.2f (ext4 reference: %s)" % (
                kn, k0, v[kn]["sep"]["create"] / v[k0]["sep"]["create"],
                v[kn]["shared"]["create"] / v[k0]["shared"]["create"],
                "%.2f / %.2f" % (res["ext4 (loop)"][kn]["sep"]["create"] / res["ext4 (loop)"][k0]["sep"]["create"],
                                 res["ext4 (loop)"][kn]["shared"]["create"] / res["ext4 (loop)"][k0]["shared"]["create"])
                if "ext4 (loop)" in res else "not measured")]
    return L, head


# ---------------------------------------------------------------- lock (+ sanlock takeover)
def curve_lock(tmp):
    ks = env_list("SCALE_LOCK_HOSTS", "1,2,4,8")
    secs = os.environ.get("SCALE_LOCK_SECS", "3")
    lm = {}
    for k in ks:
        out = run([LMB, "contend", os.path.join(tmp, "lm.img"), str(k), secs],
                  capture_output=True, text=True, timeout=300 + 10 * float(secs)).stdout
        lm[k] = json.loads(out)
        log("lock lockmgr %d hosts: %s" % (k, lm[k]))
    sl, why = {}, None
    try:
        import sanlock  # noqa: F401
        ok = have("sanlock")
    except ImportError:
        ok = False
    if not ok:
        why = "sanlock / python3-sanlock not installed"
    else:
        take = os.environ.get("SCALE_SANLOCK_TAKEOVER", "1") == "1"
        for ioto in env_list("SCALE_SANLOCK_IOTO", "2"):
            work = os.path.join(tmp, "sl%d" % ioto)
            env = dict(os.environ, SANLOCK_BENCH_HOSTS=",".join(str(k) for k in ks if k <= 8),
                       SANLOCK_BENCH_SECS=secs)
            log("lock sanlock io_timeout %d (join, contention%s)" % (
                ioto, ", takeover: minutes" if take else ""))
            args = ["/usr/bin/python3", os.path.join(os.path.dirname(HERE), "lock",
                                                     "sanlock_bench.py"), str(ioto), work]
            if not take:
                args.append("--no-takeover")
            p = spawn(args, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
            try:
                out, _ = p.communicate(timeout=900)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # its own group: its sanlock daemons
                p.wait()
                why = "sanlock_bench timed out"
                continue
            if p.returncode:
                why = "sanlock_bench failed (exit %d)" % p.returncode
                continue
            sl[ioto] = json.loads(out)
            log("lock sanlock io_timeout %d: %s" % (ioto, sl[ioto]))
    return {"ks": ks, "secs": float(secs), "lm": lm, "sl": sl, "why": why}


def md_lock(r, outdir, tmp):
    ks, lm, sl = r["ks"], r["lm"], r["sl"]
    L = ["## Lock hand-offs/s against contending hosts", "",
         "Each host loops acquire/release of one exclusive lock for %.0f s (lockmgr: "
         "`lm_bench contend`, one process per host on one image; sanlock: one unprivileged "
         "daemon per host, leases through python3-sanlock, waiters retry every 1 ms, see "
         "bench/lock). A hand-off is an acquisition by another host than the previous one." %
         r["secs"], ""]
    iotos = sorted(sl)
    hdr = "| hosts | lockmgr hand-offs/s | lockmgr acquisitions/s |"
    for t in iotos:
        hdr += " sanlock io_timeout %d hand-offs/s | acquisitions/s | hand-offs lockmgr/sanlock |" % t
    if not iotos:
        hdr += " sanlock |"
    L += [hdr, "|---" * (hdr.count("|") - 1) + "|"]
    for k in ks:
        ho = (lambda v: fmt(v, 1)) if k > 1 else (lambda v: "- (1 host)")
        row = "| %d | %s | %s |" % (k, ho(lm[k]["handoffs_per_s"]), fmt(lm[k]["acq_per_s"]))
        for t in iotos:
            c = sl[t]["contend"].get(str(k))
            row += " %s | %s | %s |" % (ho(c and c["handoffs_per_s"]), fmt(c and c["acq_per_s"]),
                                       ratio(lm[k]["handoffs_per_s"], c and c["handoffs_per_s"])
                                       if k > 1 else "- (1 host: no hand-offs)")
        if not iotos:
            row += " not measured (%s) |" % r["why"]
        L.append(row)
    L.append("")
    series = [("lockmgr hand-offs/s", [(k, lm[k]["handoffs_per_s"]) for k in ks if k > 1]),
              ("lockmgr acquisitions/s", [(k, lm[k]["acq_per_s"]) for k in ks])]
    for t in iotos:
        series += [("sanlock io %d hand-offs/s" % t,
                    [(k, sl[t]["contend"][str(k)]["handoffs_per_s"]) for k in ks
                     if k > 1 and str(k) in sl[t]["contend"]]),
                   ("sanlock io %d acquisitions/s" % t,
                    [(k, sl[t]["contend"][str(k)]["acq_per_s"]) for k in ks if str(k) in sl[t]["contend"]])]
    png = os.path.join(outdir, "scale-lock.png")
    if plot(png, "lock hand-offs/s against contending hosts", "contending hosts", "per second",
            series, tmp=tmp):
        L += ["![lock hand-offs/s against contending hosts](scale-lock.png)", ""]
    kn = ks[-1]
    if iotos:
        c = sl[iotos[0]]["contend"].get(str(kn))
        head = ["lock: at %d hosts lockmgr/sanlock(io_timeout %d) hand-offs %s, acquisitions %s" % (
            kn, iotos[0], ratio(lm[kn]["handoffs_per_s"], c and c["handoffs_per_s"]),
            ratio(lm[kn]["acq_per_s"], c and c["acq_per_s"]))]
    else:
        head = ["lock: sanlock not measured (%s)" % r["why"]]
    return L, head


# ---------------------------------------------------------------- takeover
def holder_proc(path):
    """A process on host A holding PATH open for writing; prints 'held'."""
    return spawn([sys.executable, "-c",
                  "import os,sys,time\nfd=os.open(sys.argv[1],os.O_RDWR)\nprint('held',flush=True)\n"
                  "time.sleep(3600)", path], stdout=subprocess.PIPE, text=True)


def curve_takeover(tmp):
    tos = env_list("SCALE_TAKEOVER_MS", "2000,4000,8000")
    res = {}
    for to in tos:
        iv = max(100, to // 8)
        img = os.path.join(tmp, "to.img")
        mkfs_vmfs(img, 1 << 30, "--hb-interval", str(iv), "--hb-timeout", str(to))
        ma, mb = os.path.join(tmp, "toa"), os.path.join(tmp, "tob")
        pa, _ = mount_vmfs(img, ma, "host=a")
        pb, _ = mount_vmfs(img, mb, "host=b", "open_wait=%d" % (2 * to))
        f = os.path.join(ma, "vm.vmdk")
        with open(f, "wb") as fh:
            fh.write(b"x" * 4096)
        h = holder_proc(f)
        try:
            if h.stdout.readline().strip() != "held":
                raise RuntimeError("holder did not open the file")
            # check that B really is refused while A lives
            busy = False
            try:
                os.close(os.open(os.path.join(mb, "vm.vmdk"), os.O_RDWR))
            except OSError as e:
                busy = e.errno == errno.EBUSY
            time.sleep(1)
            pa.kill()
            t0 = time.monotonic()
            pa.wait(30)
            h.kill()
            h.wait(30)
            subprocess.run(["fusermount3", "-u", "-z", ma], timeout=30, stderr=subprocess.DEVNULL)
            t = None
            while time.monotonic() - t0 < max(60, 10 * to / 1000):
                try:
                    os.close(os.open(os.path.join(mb, "vm.vmdk"), os.O_RDWR))
                    t = time.monotonic() - t0
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise
                    time.sleep(0.05)
            res[to] = {"interval_ms": iv, "takeover_s": t, "busy_while_alive": busy}
            log("takeover timeout %d ms: %s" % (to, res[to]))
        finally:
            if h.poll() is None:
                h.kill()
                h.wait()
            umount_fuse(pb, mb)
            if pa.poll() is None:
                umount_fuse(pa, ma)
            os.unlink(img)
    return {"tos": tos, "res": res}


def md_takeover(r, lock, outdir, tmp):
    res = r["res"]
    L = ["## Dead-host takeover time against the heartbeat timeout", "",
         "`vmfsctl mkfs --hb-interval T/8 --hb-timeout T`; host A (vmfsmount `host=a`) holds a "
         "file open for writing, host B (`host=b,open_wait=2T`) is refused (EBUSY) while A lives; "
         "A's vmfsmount gets SIGKILL; time until B's `open(O_RDWR)` succeeds (retried every "
         "50 ms). Peer: sanlock, holder's daemon killed, another host's acquire retried every 1 s "
         "(measured in the lock curve's run; its host-dead timeout is 8 x io_timeout, the x "
         "value below). A takeover a little under the timeout is expected: the dead host's last "
         "heartbeat was written up to one interval before the kill.", "",
         "| dead-host timeout (s) | system | interval (ms) | refused while alive | takeover (s) |"
         " takeover / timeout |", "|---|---|---|---|---|---|"]
    for to in r["tos"]:
        v = res.get(to, {})
        t = v.get("takeover_s")
        L.append("| %.1f | vmfsmount | %d | %s | %s | %s |" % (
            to / 1000, v.get("interval_ms", 0), "yes" if v.get("busy_while_alive") else "NO",
            fmt(t, 2) if t is not None else "not taken over within the limit",
            "%.2f" % (t / (to / 1000)) if t else "-"))
    sl = lock["sl"] if lock else {}
    spts = []
    for ioto in sorted(sl):
        t = sl[ioto].get("takeover_s")
        if "takeover_s" not in sl[ioto]:
            continue
        spts.append((8 * ioto, t))
        L.append("| %d | sanlock io_timeout %d | - | yes | %s | %s |" % (
            8 * ioto, ioto, fmt(t, 1) if t is not None else "> 400 (gave up)",
            "%.2f" % (t / (8 * ioto)) if t else "-"))
    if not spts:
        L.append("| - | sanlock | - | - | not measured (%s) | - |" % (
            (lock or {}).get("why") or "lock curve not run or SCALE_SANLOCK_TAKEOVER=0"))
    L.append("")
    series = [("vmfsmount", [(to / 1000, res[to]["takeover_s"]) for to in r["tos"] if to in res])]
    if spts:
        series.append(("sanlock", spts))
    series.append(("y = timeout", [(to / 1000, to / 1000) for to in r["tos"]] + [(x, x) for x, _ in spts]))
    png = os.path.join(outdir, "scale-takeover.png")
    if plot(png, "dead-host takeover time against heartbeat timeout", "dead-host timeout (s)",
            "takeover (s)", series, tmp=tmp):
        L += ["![takeover time against heartbeat timeout](scale-takeover.png)", ""]
    best = min(r["tos"])
    ours = res.get(best, {}).get("takeover_s")
    if spts and spts[0][1] is not None and ours:
        head = ["takeover: vmfsmount %.1f s at timeout %.0f s vs sanlock %.1f s at io_timeout %d:"
                " sanlock/vmfsmount %.1fx" % (ours, best / 1000, spts[0][1], spts[0][0] // 8,
                                              spts[0][1] / ours)]
    else:
        head = ["takeover: vmfsmount %s s at timeout %.0f s; sanlock not measured" % (
            fmt(ours, 1), best / 1000)]
    return L, head


# ---------------------------------------------------------------- fsck
def populate(d, n):
    for i in range(n):
        sub = os.path.join(d, "d%03d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(sub, exist_ok=True)
        fd = os.open(os.path.join(sub, "f%06d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"y" * 4096)
        os.close(fd)


def timed(args, ok=(0,)):
    t = time.monotonic()
    p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       timeout=1800)
    dt = time.monotonic() - t
    if p.returncode not in ok:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr[-300:]))
    return dt


def fsck_point(tmp, size, n):
    img = os.path.join(tmp, "fsck.img")
    mkfs_vmfs(img, size)
    mnt = os.path.join(tmp, "fsck-vmfs")
    p, _ = mount_vmfs(img, mnt)
    try:
        populate(mnt, n)
    finally:
        umount_fuse(p, mnt)
    out = {"vmfs": min(timed([VMFSCTL, "fsck", "-n", img]) for _ in range(3))}
    os.unlink(img)
    img = os.path.join(tmp, "fsck-ext4.img")
    mkfs_ext4(img, size, lazy=True)
    mnt = os.path.join(tmp, "fsck-ext4")
    loop = mount_ext4(img, mnt)
    if loop:
        try:
            populate(mnt, n)
        finally:
            umount_ext4(mnt, loop)
    elif have("fuse2fs"):
        pf = mount_fuse2fs(img, mnt)
        try:
            populate(mnt, n)
        finally:
            umount_fuse(pf, mnt)
    else:
        out["ext4"] = None
        os.unlink(img)
        return out
    out["ext4"] = min(timed(["e2fsck", "-f", "-n", img]) for _ in range(3))
    os.unlink(img)
    log("fsck %s %d files: %s" % (human(size), n, out))
    return out


def curve_fsck(tmp):
    files = env_list("SCALE_FSCK_FILES", "100,1000,3000")
    base = size_bytes(os.environ.get("SCALE_FSCK_BASE", "8G"))
    sizes = env_list("SCALE_FSCK_SIZES", "1G,8G,64G", size_bytes)
    sn = int(os.environ.get("SCALE_FSCK_SIZE_FILES", "1000"))
    byfiles = {n: fsck_point(tmp, base, n) for n in files}
    bysize = {s: (byfiles[sn] if s == base and sn in byfiles else fsck_point(tmp, s, sn))
              for s in sizes}
    return {"files": files, "base": base, "sizes": sizes, "sn": sn, "byfiles": byfiles,
            "bysize": bysize}


def md_fsck(r, outdir, tmp):
    L = ["## fsck time against file count and volume size", "",
         "Files of 4 KiB written through each mount (1000 per directory), then the image "
         "checked read-only: `vmfsctl fsck -n IMG` vs `e2fsck -f -n IMG` (ext4 made with lazy "
         "inode-table init, populated through the kernel on a loop device). Both read the image "
         "file through the page cache of this machine.", "",
         "| volume | files | vmfsctl fsck -n (s, best of 3) | e2fsck -f -n (s, best of 3) | vmfs / e2fsck |",
         "|---|---|---|---|---|"]
    rows = [(r["base"], n, r["byfiles"][n]) for n in r["files"]]
    rows += [(s, r["sn"], r["bysize"][s]) for s in r["sizes"] if not (s == r["base"] and r["sn"] in r["files"])]
    for s, n, v in rows:
        L.append("| %s | %d | %.3f | %s | %s |" % (human(s), n, v["vmfs"], fmt(v["ext4"], 3) if v["ext4"] is not None else "not measured", ratio(v["vmfs"], v["ext4"])))
    L.append("")
    png = os.path.join(outdir, "scale-fsck.png")
    p1 = [("vmfsctl fsck -n", [(n, r["byfiles"][n]["vmfs"]) for n in r["files"]]),
          ("e2fsck -f -n", [(n, r["byfiles"][n]["ext4"]) for n in r["files"]])]
    p2 = [("vmfsctl fsck -n", [(s / (1 << 30), r["bysize"][s]["vmfs"]) for s in r["sizes"]]),
          ("e2fsck -f -n", [(s / (1 << 30), r["bysize"][s]["ext4"]) for s in r["sizes"]])]
    if plot_panels(png, "fsck time against file count and volume size", [
            ("against files (%s volume)" % human(r["base"]), "files", "seconds (best of 3)", p1),
            ("against volume size (%d files)" % r["sn"], "volume size (GiB)", "seconds (best of 3)",
             p2)], tmp=tmp):
        L += ["![fsck time against files and volume size](scale-fsck.png)", ""]
    nf = r["files"][-1]
    sb = r["sizes"][-1]
    head = ["fsck: vmfs/e2fsck time %s at %d files, %s at %s" % (
        ratio(r["byfiles"][nf]["vmfs"], r["byfiles"][nf]["ext4"]), nf,
        ratio(r["bysize"][sb]["vmfs"], r["bysize"][sb]["ext4"]), human(sb))]
    return L, head


# ---------------------------------------------------------------- mount vs dead slots
def curve_mount(tmp):
    ds = env_list("SCALE_DEAD", "0,1,4,16")
    to = 2000
    res = {}
    for d in ds:
        img = os.path.join(tmp, "mnt.img")
        mkfs_vmfs(img, 1 << 30, "-H", str(max(64, d + 8)), "--hb-interval", "250",
                  "--hb-timeout", str(to), "--locks", str(max(256, d + 8)))
        for i in range(d):
            p = spawn([VMFSCTL, "lock", "--host", "dead%d" % i, "-w", "30", img, "l%d" % i],
                      stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline()
            if not line.startswith("locked"):
                raise RuntimeError("vmfsctl lock: %r" % line)
            p.kill()
            p.wait(30)
        if d:
            time.sleep(to / 1000 + 1)  # all of them dead
        mnt = os.path.join(tmp, "mnt-t")
        times = []
        for _ in range(3):
            p, t = mount_vmfs(img, mnt, "host=live")
            times.append(t)
            umount_fuse(p, mnt)
        st = timed([VMFSCTL, "fsck", "-n", img], ok=(0, 4))
        res[d] = {"first": times[0], "median": sorted(times)[1], "fsck": st}
        log("mount with %d dead slots: %s" % (d, res[d]))
        os.unlink(img)
    return {"ds": ds, "res": res}


def md_mount(r, lock, outdir, tmp):
    res = r["res"]
    L = ["## Mount time against the number of dead slots", "",
         "Volume made with `--hb-interval 250 --hb-timeout 2000`; D hosts joined with "
         "`vmfsctl lock --host deadN IMG lN` (each holding a named lock) and were killed with "
         "SIGKILL, then the mount waited out the timeout. Mount time: start of `vmfsmount -f` "
         "until the mount shows in /proc/self/mounts; mounted three times in a row (the first "
         "mount may take over the dead slots and their locks). No peer: sanlock's equivalent, "
         "add_lockspace, waits a fixed delay (%s).", "",
         "| dead slots | first mount (s) | median of 3 (s) | vmfsctl fsck -n after (s) |",
         "|---|---|---|---|"]
    sl = (lock or {}).get("sl", {})
    ref = "; ".join("%.1f s at io_timeout %d, measured in this run" % (sl[t]["join_s"], t)
                    for t in sorted(sl)) or "21 s at io_timeout 10, 5 s at 2 per PEERS.md; not measured in this run"
    L[2] = L[2] % ref
    for d in r["ds"]:
        v = res[d]
        L.append("| %d | %.3f | %.3f | %.3f |" % (d, v["first"], v["median"], v["fsck"]))
    L.append("")
    xs = [d for d in r["ds"]]
    series = [("vmfsmount, first mount", [(d + 1, res[d]["first"]) for d in xs]),
              ("vmfsmount, median of 3", [(d + 1, res[d]["median"]) for d in xs])]
    png = os.path.join(outdir, "scale-mount.png")
    if plot(png, "mount time against dead heartbeat slots (x = dead slots + 1)",
            "dead slots + 1", "seconds", series, tmp=tmp):
        L += ["![mount time against dead slots](scale-mount.png)", ""]
    d0, dn = r["ds"][0], r["ds"][-1]
    head = ["mount: first mount %.3f s with %d dead slots vs %.3f s with %d (%.2fx)" % (
        res[dn]["first"], dn, res[d0]["first"], d0, res[dn]["first"] / res[d0]["first"])]
    return L, head


# ---------------------------------------------------------------- main
def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / (1 << 20))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return ("Machine: %s, %d CPUs (nproc), %s RAM, kernel %s; load average at the start %s. "
            "The machine is shared with other jobs: absolute numbers are noisy (up to +-30%%), "
            "compare within one run." % (cpu, os.cpu_count(), mem, platform.release(), " ".join(load)))


def main():
    outdir = sys.argv[1]
    curves = [c for c in os.environ.get("SCALE_CURVES", ",".join(ALL)).split(",") if c]
    for c in curves:
        if c not in ALL:
            sys.exit("scale.py: unknown curve %s (known: %s)" % (c, ",".join(ALL)))
    for f in (VMFSCTL, VMFSMOUNT, LMB):
        if not os.access(f, os.X_OK):
            sys.exit("scale.py: %s missing (build first)" % f)
    tmp = tempfile.mkdtemp(prefix="scale-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    SCRATCH.append(tmp)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    mach = machine()
    t_start = time.monotonic()
    data = {}
    try:
        for c in curves:
            log("curve", c)
            t = time.monotonic()
            data[c] = globals()["curve_" + c](tmp)
            data[c]["seconds"] = time.monotonic() - t
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    env = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(os.environ.items())
                   if (k.startswith("SCALE_") and k != "SCALE_NOTE") or k == "VMFS_BUILD")
    L = ["# bench scale: how cost grows as work grows", "",
         "%s. %s" % (date, mach), "",
         "Command: `%s./run bench scale` (bench/scale/run.sh, bench/scale/scale.py; defaults and "
         "the environment variables for bigger runs are in scale.py's docstring). Whole run "
         "%.0f s. Peers: fuse2fs and kernel ext4 on a loop device (directory size, hosts, fsck), "
         "sanlock (lock, takeover), none for mount with dead slots." % (
             env + " " if env else "", time.monotonic() - t_start), ""]
    if os.environ.get("SCALE_NOTE"):
        L += [os.environ["SCALE_NOTE"], ""]
    heads = []
    lock = data.get("lock")
    tmp2 = tempfile.mkdtemp(prefix="scaleplot-")
    try:
        for c in curves:
            if c == "takeover":
                sec, h = md_takeover(data[c], lock, outdir, tmp2)
            elif c == "mount":
                sec, h = md_mount(data[c], lock, outdir, tmp2)
            else:
                sec, h = globals()["md_" + c](data[c], outdir, tmp2)
            L += sec + ["(%s: %.0f s)" % (c, data[c]["seconds"]), ""]
            heads += h
    finally:
        shutil.rmtree(tmp2, ignore_errors=True)
    L[6:6] = ["Headlines:", ""] + ["- " + h for h in heads] + [""]
    text = "\n".join(L) + "\n"
    with open(os.path.join(outdir, "scale.md"), "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "scale.json"), "w") as f:
        json.dump({"date": date, "data": data}, f, indent=1, default=str)
    print(text)


if __name__ == "__main__":
    main()
