"""Races between two hosts through FUSE (issue 9 defects 8 and 9): two
vmfsmount processes of one image; in each round both hosts at once
 - open(O_CREAT|O_EXCL) the same new name: exactly one wins, the other
   gets EEXIST, and the file left is the winner's;
 - renameat2(RENAME_NOREPLACE) a file of their own onto the same new
   name: exactly one wins, the other gets EEXIST and keeps its source;
then RENAME_EXCHANGE swaps files and a directory with a file, seen from the
other host. Afterwards vmfsctl fsck is clean."""
import ctypes
import errno
import os
import sys
import threading

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusetest as F  # noqa: E402

ROUNDS = int(os.environ.get("FUSE_RACE_ROUNDS", "200"))
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
libc = ctypes.CDLL(None, use_errno=True)


def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


def both(fa, fb):
    """Runs fa and fb at once (a barrier before each); returns their
    results: None or the errno they raised."""
    bar = threading.Barrier(2)
    res = [None, None]

    def run(i, fn):
        bar.wait()
        try:
            fn()
        except OSError as e:
            res[i] = e.errno

    ts = [threading.Thread(target=run, args=(0, fa)), threading.Thread(target=run, args=(1, fb))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def excl_create(path, data):
    def fn():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return fn


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    vmfsctl, vmfsmount = F.tools()
    F.fuse_usable()
    c = F.Checker("fuse_race")
    tmp = F.scratch("race")
    img = os.path.join(tmp, "race.img")
    F.mkfs(vmfsctl, img, 1 << 30)
    mounts = F.Mounts(vmfsmount, tmp)
    try:
        m = [mounts.mount(img, os.path.join(tmp, "m%d" % i), host="h%d" % i) for i in (0, 1)]
        os.mkdir(os.path.join(m[0], "r"))
        bad_create = bad_rename = 0
        for i in range(ROUNDS):
            # O_CREAT|O_EXCL from both hosts
            p = [os.path.join(mm, "r", "x%d" % i) for mm in m]
            res = both(excl_create(p[0], b"host0"), excl_create(p[1], b"host1"))
            wins = [k for k in (0, 1) if res[k] is None]
            ok = len(wins) == 1 and res[1 - wins[0]] == errno.EEXIST
            if ok:
                ok = read(p[1 - wins[0]]) == b"host%d" % wins[0]
            if not ok:
                bad_create += 1
                if bad_create <= 3:
                    print("round %d: O_EXCL results %r, left %r" %
                          (i, res, read(p[0]) if os.path.exists(p[0]) else None))
            # RENAME_NOREPLACE of one file of each host onto one name
            src = [os.path.join(m[k], "r", "s%d-%d" % (i, k)) for k in (0, 1)]
            for k in (0, 1):
                with open(src[k], "wb") as f:
                    f.write(b"src%d" % k)
            dst = [os.path.join(m[k], "r", "t%d" % i) for k in (0, 1)]
            res = both(lambda: renameat2(src[0], dst[0], RENAME_NOREPLACE),
                       lambda: renameat2(src[1], dst[1], RENAME_NOREPLACE))
            wins = [k for k in (0, 1) if res[k] is None]
            ok = len(wins) == 1 and res[1 - wins[0]] == errno.EEXIST
            if ok:
                w = wins[0]
                ok = (read(dst[1 - w]) == b"src%d" % w and not os.path.exists(src[w]) and
                      read(os.path.join(m[w], "r", "s%d-%d" % (i, 1 - w))) == b"src%d" % (1 - w))
            if not ok:
                bad_rename += 1
                if bad_rename <= 3:
                    print("round %d: RENAME_NOREPLACE results %r" % (i, res))
        c.eq("O_CREAT|O_EXCL raced from 2 hosts: rounds without exactly one winner",
             bad_create, 0)
        c.eq("RENAME_NOREPLACE raced from 2 hosts: rounds without exactly one winner",
             bad_rename, 0)

        # RENAME_EXCHANGE: two files, then a directory and a file
        a, b = os.path.join(m[0], "ea"), os.path.join(m[0], "eb")
        with open(a, "wb") as f:
            f.write(b"AAA")
        with open(b, "wb") as f:
            f.write(b"BB")
        renameat2(a, b, RENAME_EXCHANGE)
        c.eq("exchange: ea seen from host 1", read(os.path.join(m[1], "ea")), b"BB")
        c.eq("exchange: eb seen from host 1", read(os.path.join(m[1], "eb")), b"AAA")
        d = os.path.join(m[0], "ed")
        os.mkdir(d)
        with open(os.path.join(d, "inner"), "wb") as f:
            f.write(b"in")
        renameat2(os.path.join(m[1], "ed"), os.path.join(m[1], "r", "x0"), RENAME_EXCHANGE)
        c.ok("exchange dir/file: the directory moved into r/",
             os.path.isdir(os.path.join(m[0], "r", "x0")))
        c.eq("exchange dir/file: its content came along",
             read(os.path.join(m[0], "r", "x0", "inner")), b"in")
        c.ok("exchange dir/file: the file is at ed", os.path.isfile(os.path.join(m[0], "ed")))
        try:
            renameat2(os.path.join(m[0], "ea"), os.path.join(m[0], "nope"), RENAME_EXCHANGE)
            c.ok("exchange with a missing name fails", False)
        except OSError as e:
            c.eq("exchange with a missing name: ENOENT", e.errno, errno.ENOENT)
        try:
            renameat2(os.path.join(m[0], "r"), os.path.join(m[0], "r", "x0", "inner"),
                      RENAME_EXCHANGE)
            c.ok("exchange of a directory into its own subtree fails", False)
        except OSError as e:
            c.eq("exchange of a directory into its own subtree: EINVAL", e.errno, errno.EINVAL)
    finally:
        st = mounts.unmount_all()
    for mnt, rc in st.items():
        c.eq("vmfsmount %s exit status" % os.path.basename(mnt), rc, 0)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck clean: %s" % out, rc, 0)
    if not c.fails:
        os.unlink(img)
    c.finish()


if __name__ == "__main__":
    main()
