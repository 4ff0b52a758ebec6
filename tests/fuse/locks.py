"""Open-file locks and data between two hosts through FUSE (two vmfsmount
processes of one image, -o host=A / host=B), and vmfsmount's errors:
  - a write-open on A makes write-opens (and, VMFS semantics, read-opens)
    of the same file on B fail with EBUSY, at once, until A closes; stat of
    the held file on B works (ls -l of a running VM's disk); after A
    closes, B's write-open succeeds;
  - read-only opens on both hosts at once succeed, and then a write-open
    on either fails with EBUSY;
  - data written and fsync'd on A (unaligned pieces, holes, a 5 MiB
    stream) is read bit-exact on B, and B's overwrite is read back on A;
  - with -o keep_locks (group commit), files whose directory was
    fsync'd and a file's fsync'd data survive kill -9 of vmfsmount;
  - a missing device, an unformatted one, a missing mount point and a bad
    option are clean one-line errors; -o ro mounts read-only (EROFS);
  - a host paused (SIGSTOP) while holding a file open for writing is
    taken over by a host whose opens wait (-o open_wait=20000, beyond the
    lock timeout); resumed, the paused host is fenced: its writes fail
    with EIO and the survivor's data stays;
  - SIGTERM unmounts cleanly and frees the heartbeat slot; without -f
    vmfsmount returns once the mount is ready, and the daemon leaves its
    slot after fusermount3 -u; fsck clean."""
import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusetest as F  # noqa: E402


def try_open(path, flags):
    """errno name, or 'ok'; returns (result, seconds)."""
    t = time.monotonic()
    try:
        os.close(os.open(path, flags))
        r = "ok"
    except OSError as e:
        r = F.errname(e)
    return r, time.monotonic() - t


def busy_checks(c, a, b):
    fa, fb = os.path.join(a, "vm1.vmdk"), os.path.join(b, "vm1.vmdk")
    fd = os.open(fa, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"disk of vm1")
        for name, flags in (("write-open", os.O_WRONLY), ("rdwr-open", os.O_RDWR),
                            ("read-open", os.O_RDONLY),
                            ("O_TRUNC open", os.O_WRONLY | os.O_TRUNC)):
            r, secs = try_open(fb, flags)
            c.eq("B %s while A holds it for writing" % name, r, "EBUSY")
            c.ok("B %s fails at once (%.2f s)" % (name, secs), secs < 3)
        c.eq("B stat of the held file: size", os.stat(fb).st_size, 11)
        c.eq("A can still open it again (same host)", try_open(fa, os.O_RDWR)[0], "ok")
        c.eq("B can create other files meanwhile", try_open(os.path.join(b, "other"),
                                                              os.O_WRONLY | os.O_CREAT)[0], "ok")
    finally:
        os.close(fd)
    c.eq("B write-open after A closed", try_open(fb, os.O_WRONLY)[0], "ok")
    c.eq("the file kept its data", open(fb, "rb").read(), b"disk of vm1")
    ra, rb = os.open(fa, os.O_RDONLY), os.open(fb, os.O_RDONLY)
    try:
        c.eq("read-only opens on both hosts", [os.pread(ra, 4, 0), os.pread(rb, 4, 0)],
             [b"disk", b"disk"])
        c.eq("A write-open while both read", try_open(fa, os.O_WRONLY)[0], "EBUSY")
        c.eq("B write-open while both read", try_open(fb, os.O_WRONLY)[0], "EBUSY")
    finally:
        os.close(ra)
        os.close(rb)
    c.eq("write-open once the readers closed", try_open(fa, os.O_WRONLY)[0], "ok")


def md5(b):
    return hashlib.md5(b).hexdigest()


def data_checks(c, a, b):
    rng = random.Random(7)
    model = bytearray()
    fd = os.open(os.path.join(a, "data.bin"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for off, n in ((0, 5000), (123457, 77777), (3 << 20, 1), (4096 * 3 + 1, 65536),
                       ((2 << 20) - 3, 9)):
            d = rng.randbytes(n)
            os.pwrite(fd, d, off)
            if len(model) < off + n:
                model.extend(bytes(off + n - len(model)))
            model[off:off + n] = d
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(os.path.join(b, "data.bin"), "rb") as f:
        got = f.read()
    c.eq("B reads A's fsync'd pieces and holes bit-exact (md5)", md5(got), md5(model))
    stream = rng.randbytes(5 << 20)
    fd = os.open(os.path.join(a, "stream.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(0, len(stream), 300001):
            os.write(fd, stream[i:i + 300001])
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(os.path.join(b, "stream.bin"), "rb") as f:
        c.eq("B reads A's 5 MiB stream bit-exact (md5)", md5(f.read()), md5(stream))
    patch = rng.randbytes(10000)
    fd = os.open(os.path.join(b, "stream.bin"), os.O_WRONLY)
    try:
        os.pwrite(fd, patch, 1 << 20)
        os.fsync(fd)
    finally:
        os.close(fd)
    want = stream[:1 << 20] + patch + stream[(1 << 20) + len(patch):]
    with open(os.path.join(a, "stream.bin"), "rb") as f:
        c.eq("A reads B's overwrite (md5)", md5(f.read()), md5(want))


def error_checks(c, vmfsctl, vmfsmount, tmp):
    mnt = os.path.join(tmp, "errmnt")
    os.makedirs(mnt, exist_ok=True)
    junk = os.path.join(tmp, "zero.img")
    with open(junk, "wb") as f:
        f.truncate(64 << 20)
    cases = (
        ("missing device", [junk + ".missing", mnt], 1, b"cannot open device"),
        ("unformatted device", [junk, mnt], 1, b"no known file system"),
        ("missing mount point", [os.path.join(tmp, "img"), mnt + "/nope"], 1,
         b"mount point is not a directory"),
        ("empty host name", ["-o", "host=", os.path.join(tmp, "img"), mnt], 2, b"host=NAME"),
        ("bad open_wait", ["-o", "open_wait=x", os.path.join(tmp, "img"), mnt], 2,
         b"open_wait"),
        ("unknown option", ["--frobnicate", os.path.join(tmp, "img"), mnt], 2, b"unknown option"),
    )
    for what, args, want_rc, msg in cases:
        p = subprocess.run([vmfsmount, "-f"] + args, capture_output=True, timeout=30)
        lines = p.stderr.decode(errors="replace").strip().splitlines()
        c.eq("%s: exit status" % what, p.returncode, want_rc)
        c.ok("%s: one-line error naming the problem" % what,
             len(lines) == 1 and msg in p.stderr, p.stderr)
        c.ok("%s: nothing mounted" % what, not F.is_mounted(mnt))
    # daemon mode reports the failure too (the child's status)
    p = subprocess.run([vmfsmount, junk, mnt], capture_output=True, timeout=30)
    c.eq("daemon mode, unformatted device: exit status", p.returncode, 1)
    h = subprocess.run([vmfsmount, "--help"], capture_output=True, timeout=30)
    c.ok("--help exits 0 with usage", h.returncode == 0 and b"Usage: vmfsmount" in h.stdout)


def ro_and_sigterm(c, vmfsctl, vmfsmount, tmp, img):
    mounts = F.Mounts(vmfsmount, tmp)
    try:
        ro = mounts.mount(img, os.path.join(tmp, "ro"), opts=("ro",))
        c.eq("-o ro: reading works", open(os.path.join(ro, "data.bin"), "rb").read(5) != b"",
             True)
        c.eq("-o ro: write-open", try_open(os.path.join(ro, "data.bin"), os.O_WRONLY)[0],
             "EROFS")
        c.ok("-o ro: statvfs says read-only", os.statvfs(ro).f_flag & os.ST_RDONLY)
        rw = mounts.mount(img, os.path.join(tmp, "sig"), host="sigterm-host")
        hosts = subprocess.run([vmfsctl, "hosts", img], capture_output=True, timeout=60)
        c.ok("the rw mount is a live host", b"sigterm-host" in hosts.stdout, hosts.stdout)
        p, _ = mounts.procs[rw]
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        c.eq("SIGTERM: vmfsmount exits 0", rc, 0)
        c.ok("SIGTERM: unmounted", not F.is_mounted(rw))
        if rc is not None:
            mounts.procs.pop(rw)
        c.eq("SIGTERM: heartbeat slot left (no live host)", live_hosts(vmfsctl, img), 0)
    finally:
        st = mounts.unmount_all()
    for m, rc in st.items():
        c.eq("vmfsmount %s exit status" % os.path.basename(m), rc, 0)


def live_hosts(vmfsctl, img):
    p = subprocess.run([vmfsctl, "hosts", "--json", "--watch", "0", img], capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        return -1
    return sum(1 for s in json.loads(p.stdout)["slots"] if s["disk_state"] == "live")


def daemon_pids(mnt):
    """PIDs of vmfsmount processes serving mnt (ours: the path is unique)."""
    pids = []
    for d in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"vmfsmount") and mnt.encode() in argv:
            pids.append(int(d))
    return pids


def daemon_mode(c, vmfsctl, vmfsmount, tmp, img):
    mnt = os.path.join(tmp, "daemon")
    os.makedirs(mnt)
    try:
        p = subprocess.run([vmfsmount, "-o", "host=daemon", img, mnt], capture_output=True,
                           timeout=60)
        c.eq("daemon mode: exit status", p.returncode, 0)
        c.ok("daemon mode: mounted when vmfsmount returns", F.is_mounted(mnt))
        c.eq("daemon mode: one live host", live_hosts(vmfsctl, img), 1)
        with open(os.path.join(mnt, "from-daemon"), "wb") as f:
            f.write(b"d" * 12345)
        c.eq("daemon mode: file written", os.path.getsize(os.path.join(mnt, "from-daemon")),
             12345)
        subprocess.run(["fusermount3", "-u", mnt], timeout=30)
        for _ in range(100):
            if not daemon_pids(mnt):
                break
            time.sleep(0.1)
        c.eq("daemon mode: the daemon exits after fusermount3 -u", daemon_pids(mnt), [])
        c.eq("daemon mode: no live host left", live_hosts(vmfsctl, img), 0)
    finally:
        if F.is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt], timeout=30)
        for pid in daemon_pids(mnt):
            os.kill(pid, signal.SIGKILL)


def takeover(c, vmfsctl, vmfsmount, tmp):
    img = os.path.join(tmp, "takeover.img")
    F.mkfs(vmfsctl, img, 1 << 30)
    mounts = F.Mounts(vmfsmount, tmp)
    pa = None
    try:
        a = mounts.mount(img, os.path.join(tmp, "TA"), host="paused")
        b = mounts.mount(img, os.path.join(tmp, "TB"), host="survivor", opts=("open_wait=20000",))
        fd = os.open(os.path.join(a, "vm.vmdk"), os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"A" * 1000)
        os.fsync(fd)
        pa = mounts.procs[a][0]
        pa.send_signal(signal.SIGSTOP)
        t = time.monotonic()
        try:
            fb = os.open(os.path.join(b, "vm.vmdk"), os.O_RDWR)
            os.pwrite(fb, b"B" * 500, 0)
            os.fsync(fb)
            os.close(fb)
            r = "ok"
        except OSError as e:
            r = F.errname(e)
        secs = time.monotonic() - t
        print("the survivor got the paused host's file after %.1f s" % secs)
        c.eq("survivor opens the paused host's file", r, "ok")
        # not before the paused host's heartbeat is 4 s old (its last beat
        # was at most 1 s before SIGSTOP), well within the wait
        c.ok("taken over after the heartbeat timeout, not before", 2.9 < secs < 20, secs)
        pa.send_signal(signal.SIGCONT)
        pa = None
        time.sleep(1.5)  # the resumed host notices it lost its slot
        try:
            os.pwrite(fd, b"X" * 100, 0)
            r = "ok"
        except OSError as e:
            r = F.errname(e)
        c.eq("the resumed (fenced) host's write", r, "EIO")
        try:
            os.close(fd)
        except OSError:
            pass
        with open(os.path.join(b, "vm.vmdk"), "rb") as f:
            c.eq("the survivor's data stays", f.read(), b"B" * 500 + b"A" * 500)
    finally:
        if pa is not None:
            pa.send_signal(signal.SIGCONT)
        st = mounts.unmount_all()
    c.eq("survivor's vmfsmount exit status", st.get(os.path.join(tmp, "TB")), 0)
    c.ok("fenced vmfsmount exits after unmount", st.get(os.path.join(tmp, "TA")) is not None)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck after the takeover: " + out, rc, 0)


def group_commit_kill(c, vmfsctl, vmfsmount, tmp):
    """-o keep_locks commits changes in groups: what fsync(2) of a directory
    or a file returned for survives kill -9 of vmfsmount (the survivor
    replays the journal), and the volume stays consistent."""
    img = os.path.join(tmp, "group.img")
    F.mkfs(vmfsctl, img, 1 << 30)
    mounts = F.Mounts(vmfsmount, tmp)
    try:
        a = mounts.mount(img, os.path.join(tmp, "GA"), host="victim", opts=("keep_locks",))
        d = os.path.join(a, "d")
        os.mkdir(d)
        for i in range(50):
            with open(os.path.join(d, "f%02d" % i), "wb") as f:
                f.write(b"%02d" % i)
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        fd = os.open(os.path.join(a, "data"), os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"D" * 4096)
        os.fsync(fd)
        os.close(fd)
        os.kill(mounts.procs[a][0].pid, signal.SIGKILL)
        mounts.unmount(a)
        b = mounts.mount(img, os.path.join(tmp, "GB"), host="survivor")
        names = sorted(os.listdir(os.path.join(b, "d")))
        c.eq("kill -9 after fsync of the directory: every file there",
             names, ["f%02d" % i for i in range(50)])
        c.eq("a file's bytes", open(os.path.join(b, "d", "f07"), "rb").read(), b"07")
        c.eq("kill -9 after fsync of a file: its data",
             open(os.path.join(b, "data"), "rb").read(), b"D" * 4096)
    finally:
        mounts.unmount_all()
    # The locks the victim kept still name its slot: free by the protocol
    # (that slot was taken over; an acquirer drops such holders), and
    # fsck -p releases them: its only finding.
    p = subprocess.run([vmfsctl, "fsck", "-p", img], capture_output=True, timeout=300, text=True)
    problems = [l for l in (p.stdout + p.stderr).splitlines() if l.startswith("fsck: ")]
    c.ok("fsck -p after kill -9 with group commit: only the victim's kept locks: " + p.stdout
         + p.stderr, p.returncode in (0, 1) and all(
             "lock held exclusive by slot" in l and "whose host is gone" in l
             and "[fixed: released]" in l for l in problems), p.returncode)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck again: clean: " + out, rc, 0)


def locks_by_name(c, vmfsctl, img, a):
    """vmfsctl locks names a held file by its path (was 'FD 8.1'), and says
    when an open file has no name left."""
    os.makedirs(os.path.join(a, "vms"), exist_ok=True)
    f = os.path.join(a, "vms", "vm9.vmdk")
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o600)

    def held():
        p = subprocess.run([vmfsctl, "locks", "--json", img], capture_output=True, timeout=120)
        c.eq("locks --json exit status", p.returncode, 0)
        return [l for l in json.loads(p.stdout)["locks"] if l.get("mode") == "exclusive"
                and any(h["host"] == "A" for h in l["holders"])]
    try:
        c.eq("locks: the held file by path", [l.get("path") for l in held()], ["/vms/vm9.vmdk"])
        p = subprocess.run([vmfsctl, "locks", img], capture_output=True, timeout=120, text=True)
        c.ok("locks text shows path=/vms/vm9.vmdk", "path=/vms/vm9.vmdk" in p.stdout)
        os.unlink(f)
        c.eq("locks: an unlinked open file has no path", [l.get("path", "-") for l in held()],
             [None])
    finally:
        os.close(fd)


def main():
    vmfsctl, vmfsmount = F.tools()
    F.fuse_usable()
    c = F.Checker("fuse_locks")
    tmp = F.scratch("locks")
    img = os.path.join(tmp, "img")
    F.mkfs(vmfsctl, img, 1 << 30)
    mounts = F.Mounts(vmfsmount, tmp)
    try:
        a = mounts.mount(img, os.path.join(tmp, "A"), host="A")
        b = mounts.mount(img, os.path.join(tmp, "B"), host="B")
        busy_checks(c, a, b)
        data_checks(c, a, b)
        locks_by_name(c, vmfsctl, img, a)
    finally:
        st = mounts.unmount_all()
    for m, rc in st.items():
        c.eq("vmfsmount %s exit status" % os.path.basename(m), rc, 0)
    ro_and_sigterm(c, vmfsctl, vmfsmount, tmp, img)
    takeover(c, vmfsctl, vmfsmount, tmp)
    group_commit_kill(c, vmfsctl, vmfsmount, tmp)
    daemon_mode(c, vmfsctl, vmfsmount, tmp, img)
    error_checks(c, vmfsctl, vmfsmount, tmp)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck clean: " + out, rc, 0)
    if not c.fails:
        subprocess.run(["rm", "-rf", tmp])
    c.finish()


if __name__ == "__main__":
    main()
