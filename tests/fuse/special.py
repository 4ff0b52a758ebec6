"""Special files through vmfsmount, compared with the same operations in a
directory of /tmp: mkfifo, mknod of character and block devices (root
only: skipped with a message otherwise), mknod of a regular file, a UNIX
socket bound in the mount; `stat -c %F/%t/%T/%a` and lstat (type, rdev,
mode) the same as on /tmp; readdir's d_type is not "regular file"; a
FIFO in the mount carries data between two processes and a socket bound
there accepts a connection; chmod, chown, rename, link and unlink work;
everything survives a remount; `vmfsctl ls -l` / `stat --json` show the
types and device numbers; fsck is clean after unmounting."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusetest as F  # noqa: E402

ROOT = os.geteuid() == 0  # mknod of devices needs CAP_MKNOD (`id -u` = 0)


def make_nodes(d):
    """The nodes, made the same way in d; returns their names."""
    names = ["fifo", "reg"]
    os.mkfifo(os.path.join(d, "fifo"), 0o640)
    os.mknod(os.path.join(d, "reg"), stat.S_IFREG | 0o604)
    if ROOT:
        os.mknod(os.path.join(d, "chr"), stat.S_IFCHR | 0o620, os.makedev(1, 3))
        os.mknod(os.path.join(d, "blk"), stat.S_IFBLK | 0o660, os.makedev(8, 17))
        os.mknod(os.path.join(d, "bigdev"), stat.S_IFCHR | 0o600, os.makedev(4095, 1048575))
        names += ["chr", "blk", "bigdev"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cwd = os.getcwd()
    os.chdir(d)  # a relative name: the socket path limit is 108 bytes
    try:
        s.bind("sock")
    finally:
        os.chdir(cwd)
    s.close()
    names.append("sock")
    return names


def stat_c(path):
    p = subprocess.run(["stat", "-c", "%F/%t/%T/%a/%s", path], capture_output=True, text=True,
                       timeout=30)
    return p.stdout.strip() or p.stderr.strip()


def lstat_key(path):
    st = os.lstat(path)
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_rdev, st.st_size)


def compare(c, mnt, ref, names, what):
    for n in names:
        c.eq("%s: stat -c %%F/%%t/%%T/%%a/%%s of %s" % (what, n), stat_c(os.path.join(mnt, n)),
             stat_c(os.path.join(ref, n)))
        c.eq("%s: lstat of %s" % (what, n), lstat_key(os.path.join(mnt, n)),
             lstat_key(os.path.join(ref, n)))


def check_dtype(c, mnt, names):
    """d_type from readdir: specials are neither files nor directories
    (DirEntry.is_file() uses d_type without a stat when it is known)."""
    ents = {e.name: e for e in os.scandir(mnt)}
    for n in names:
        e = ents.get(n)
        if not c.ok("readdir lists " + n, e is not None):
            continue
        is_reg = n == "reg"
        c.eq("d_type of %s is a regular file" % n, e.is_file(follow_symlinks=False), is_reg)
        c.eq("d_type of %s is a directory" % n, e.is_dir(follow_symlinks=False), False)


def fifo_data(c, path):
    """A writer process and this reader through the FIFO in the mount."""
    msg = b"through the fifo " * 1000
    w = subprocess.Popen(["python3", "-c",
                          "import sys; f = open(sys.argv[1], 'wb'); f.write(%r); f.close()" % msg,
                          path])
    signal.alarm(30)  # a FIFO open blocks until both ends are there
    try:
        with open(path, "rb") as f:
            got = f.read()
    finally:
        signal.alarm(0)
    c.eq("writer exit status", w.wait(timeout=30), 0)
    c.eq("bytes through the FIFO", got, msg)


def socket_data(c, mnt):
    cwd = os.getcwd()
    os.chdir(mnt)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind("live.sock")
        srv.listen(1)
        srv.settimeout(20)
        cli.settimeout(20)
        cli.connect("live.sock")
        conn, _ = srv.accept()
        cli.sendall(b"ping")
        c.eq("bytes through the socket", conn.recv(4), b"ping")
        conn.close()
    finally:
        cli.close()
        srv.close()
        os.chdir(cwd)
    c.eq("a bound socket is a socket", stat.S_ISSOCK(os.lstat(os.path.join(mnt, "live.sock")).st_mode),
         True)
    os.unlink(os.path.join(mnt, "live.sock"))


def name_ops(c, mnt, ref):
    """chmod, chown, link, rename, unlink on a FIFO and a device, mirrored on /tmp."""
    for d in (mnt, ref):
        os.mkfifo(os.path.join(d, "f2"), 0o600)
        os.chmod(os.path.join(d, "f2"), 0o751)
        os.chown(os.path.join(d, "f2"), 4321, 8765)
        os.link(os.path.join(d, "f2"), os.path.join(d, "f2.link"))
        os.mkdir(os.path.join(d, "sub"))
        os.rename(os.path.join(d, "f2.link"), os.path.join(d, "sub", "moved"))
        if ROOT:
            os.mknod(os.path.join(d, "c2"), stat.S_IFCHR | 0o600, os.makedev(10, 200))
            os.rename(os.path.join(d, "c2"), os.path.join(d, "sub", "moved"))  # replaces
    compare(c, mnt, ref, ["f2", "sub/moved"], "after chmod/chown/link/rename")
    for d in (mnt, ref):
        c.eq("owner of f2 (%s)" % d, (os.lstat(os.path.join(d, "f2")).st_uid,
                                      os.lstat(os.path.join(d, "f2")).st_gid), (4321, 8765))
        c.eq("links of f2 (%s)" % d, os.lstat(os.path.join(d, "f2")).st_nlink, 1 if ROOT else 2)
        os.unlink(os.path.join(d, "sub", "moved"))
        os.unlink(os.path.join(d, "f2"))
        os.rmdir(os.path.join(d, "sub"))
        c.eq("f2 gone (%s)" % d, os.path.lexists(os.path.join(d, "f2")), False)


def tool_checks(c, vmfsctl, img):
    p = subprocess.run([vmfsctl, "ls", "-l", img, "/"], capture_output=True, text=True,
                       timeout=60)
    lines = {ln.split()[-1]: ln for ln in p.stdout.splitlines() if ln.strip()}
    c.ok("vmfsctl ls -l: fifo", lines.get("fifo", "").startswith("prw-r-----"), p.stdout)
    c.ok("vmfsctl ls -l: sock", lines.get("sock", "").startswith("s"), p.stdout)
    c.ok("vmfsctl ls -l: reg", lines.get("reg", "").startswith("-rw----r--"), p.stdout)
    if ROOT:
        c.ok("vmfsctl ls -l: chr", lines.get("chr", "").startswith("crw--w----"), p.stdout)
        c.ok("vmfsctl ls -l: chr 1, 3", " 1, 3 " in lines.get("chr", ""), p.stdout)
        c.ok("vmfsctl ls -l: blk", lines.get("blk", "").startswith("brw-rw----"), p.stdout)
        p = subprocess.run([vmfsctl, "stat", "--json", img, "/bigdev"], capture_output=True,
                           text=True, timeout=60)
        try:
            j = json.loads(p.stdout)
        except ValueError:
            j = {}
        c.eq("vmfsctl stat --json /bigdev", (j.get("type"), j.get("major"), j.get("minor")),
             ("chardev", 4095, 1048575))
    p = subprocess.run([vmfsctl, "stat", img, "/fifo"], capture_output=True, text=True,
                       timeout=60)
    c.ok("vmfsctl stat /fifo: Type: fifo", "Type: fifo" in p.stdout, p.stdout + p.stderr)


def main():
    vmfsctl, vmfsmount = F.tools()
    F.fuse_usable()
    c = F.Checker("fuse_special")
    os.umask(0)  # the modes below as given (the kernel applies the umask to both sides)
    if not ROOT:
        print("SKIP part: not root (id -u != 0): no character or block devices")
    tmp = F.scratch("special")
    ref = tempfile.mkdtemp(prefix="vmfs-special-ref-", dir="/tmp")
    img = os.path.join(tmp, "v.img")
    F.mkfs(vmfsctl, img, 64 << 20, "-H", "4", "-J", "256K", "--locks", "1")
    mounts = F.Mounts(vmfsmount, tmp)
    try:
        mnt = mounts.mount(img, os.path.join(tmp, "m"), host="special")
        names = make_nodes(mnt)
        make_nodes(ref)
        compare(c, mnt, ref, names, "new")
        check_dtype(c, mnt, names)
        try:
            os.mknod(os.path.join(mnt, "fifo"), stat.S_IFIFO | 0o600)
            c.ok("mknod over an existing name fails", False)
        except FileExistsError:
            pass
        fifo_data(c, os.path.join(mnt, "fifo"))
        socket_data(c, mnt)
        name_ops(c, mnt, ref)
        c.eq("vmfsmount still up", mounts.unmount(mnt), 0)
        rc, out = F.fsck(vmfsctl, img)
        c.eq("fsck clean after the first mount: " + out, rc, 0)
        mnt = mounts.mount(img, os.path.join(tmp, "m"), host="again")
        compare(c, mnt, ref, names, "after remount")
        check_dtype(c, mnt, names)
        fifo_data(c, os.path.join(mnt, "fifo"))
    finally:
        st = mounts.unmount_all()
        shutil.rmtree(ref, ignore_errors=True)
    for m, rc in st.items():
        c.eq("vmfsmount exit status", rc, 0)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck clean: " + out, rc, 0)
    tool_checks(c, vmfsctl, img)
    if not c.fails:
        subprocess.run(["rm", "-rf", tmp])
    c.finish()


if __name__ == "__main__":
    main()
