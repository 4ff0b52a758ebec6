"""vmfsctl ls/stat/cat/cp/tree on real VMFS5 and VMFS6 datastores agree with
debugvmfs (VMFS5) and debugvmfs6 (VMFS6) run on the same image: names,
modes, link counts, owners, sizes, times, inode numbers, block sizes,
symlink targets (through their content) and file contents (md5)."""
import json
import os
import re
import shutil
import stat
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmfsrtest as T  # noqa: E402

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def mode_str(e):
    t = {"dir": "d", "symlink": "l"}.get(e["type"], "-")
    m = e["mode"]
    s = "".join(c if m & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    s = list(s)
    if m & 0o4000:
        s[2] = "s" if m & 0o100 else "S"
    if m & 0o2000:
        s[5] = "s" if m & 0o010 else "S"
    if m & 0o1000:
        s[8] = "t" if m & 0o001 else "T"
    return t + "".join(s)


def utc(t):
    import time
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def oracle_inode(version, img, path):
    rc, out = T.oracle_out(version, img, "show", 'inode["%s"]' % path)
    res = {}
    for line in out.decode("utf-8", "replace").splitlines():
        k, _, v = line.partition(":")
        res[k.strip()] = v.strip()
    return res


def size_of(s):
    n, u = s.split()
    return int(float(n) * UNITS[u])


def check_inode(c, version, img, path, ours, st):
    o = oracle_inode(version, img, path)
    if "ID" not in o:
        c.ok("%s: oracle shows the inode" % path, False)
        return
    c.eq(path + " ino", st["ino"], int(o["ID"], 16))
    c.eq(path + " nlink(inode)", st["nlink"], int(o["Links"]))
    c.eq(path + " uid", st["uid"], int(o["UID"]))
    c.eq(path + " gid", st["gid"], int(o["GID"]))
    c.eq(path + " perm", st["mode"], int(o["Mode"].split()[0], 8) & 0o7777)
    c.eq(path + " blksize", st["blksize"], size_of(o["Block size"]))
    c.eq(path + " blocks", st["blocks"], int(o["Block count"]) * st["blksize"] // 512)
    c.eq(path + " atime", utc(st["atime"]), o["Access Time"])
    c.eq(path + " mtime(inode)", utc(st["mtime"]), o["Modify Time"])
    c.eq(path + " ctime", utc(st["ctime"]), o["Change Time"])
    c.eq(path + " stat vs ls", (st["size"], st["mode"], st["type"]),
         (ours["size"], ours["mode"], ours["type"]))


def check_content(c, version, img, vmfsctl, path, tmp, size):
    rc, ours = T.stream_md5([vmfsctl, "cat", img, path])
    c.ok("%s: vmfsctl cat succeeds" % path, rc == 0)
    banner = b"VMFS version: 6\n" if version == 6 else b""
    rc, theirs = T.stream_md5([T.ORACLE[version], img, "cat", path], banner)
    c.ok("%s: oracle cat succeeds" % path, rc == 0)
    c.eq(path + " md5", ours, theirs)
    if size > (16 << 20):
        return  # cp shares cat's read path; keep the scratch space small
    out = os.path.join(tmp, "cp.out")
    T.run([vmfsctl, "cp", img + ":" + path, out], timeout=120)
    with open(out, "rb") as f:
        c.eq(path + " cp md5", T.md5(f.read()), ours)
    os.unlink(out)


def walk(c, version, img, vmfsctl, path, tmp, seen):
    ours = T.ours_ls(vmfsctl, img, path)
    try:
        theirs = T.oracle_ls(version, img, path)
    except RuntimeError as e:
        # debugvmfs cannot list the system directory .sdd.sf (type 5)
        print("NOTE: oracle cannot list %s (%s); checking . and .. only" % (path, e))
        c.ok(path + " lists . and ..", {".", ".."} <= set(ours))
        return
    if not theirs:
        # debugvmfs6 lists nothing, not even ".", in the system dir .sdd.sf
        print("NOTE: oracle lists nothing in %s; checking . and .. only" % path)
        c.ok(path + " lists . and ..", {".", ".."} <= set(ours))
        return
    c.eq(path + " names", sorted(ours), sorted(theirs))
    for name in sorted(set(ours) & set(theirs)):
        e, o = ours[name], theirs[name]
        full = e["path"]
        c.eq(full + " mode", mode_str(e), o[0])
        c.eq(full + " nlink", e["nlink"], o[1])
        c.eq(full + " owner", (T.user_name(e["uid"]), T.group_name(e["gid"])), (o[2], o[3]))
        c.eq(full + " size", e["size"], o[4])
        # debugvmfs's 'ls -l' prints the FD time at 0x30 (our ctime)
        c.eq(full + " ls time", utc(e["ctime"]), o[5])
        if name in (".", ".."):
            continue
        st = json.loads(T.run([vmfsctl, "stat", "--json", img, full]).stdout)
        if e["type"] == "symlink":
            # the oracle's 'show inode' follows symlinks: compare stat -L
            stl = json.loads(T.run([vmfsctl, "stat", "-L", "--json", img, full]).stdout)
            check_inode(c, version, img, full, stl, stl)
        else:
            check_inode(c, version, img, full, e, st)
        if e["type"] == "symlink":
            c.ok(full + " has a target", bool(st.get("target")))
            c.eq(full + " target length", len(st.get("target", "").encode()), e["size"])
            check_content(c, version, img, vmfsctl, full, tmp, e["size"])
        elif e["type"] == "file":
            check_content(c, version, img, vmfsctl, full, tmp, e["size"])
        elif e["ino"] not in seen:
            seen.add(e["ino"])
            walk(c, version, img, vmfsctl, full, tmp, seen)


def check_tree(c, img, vmfsctl):
    out = T.run([vmfsctl, "tree", "-a", img]).stdout.decode()
    m = re.search(r"(\d+) director(?:y|ies), (\d+) files?", out)
    c.ok("tree prints a summary", m is not None)
    ls = T.run([vmfsctl, "ls", "-aR", "--json", img, "/"]).stdout
    ents = [e for e in json.loads(ls) if e["name"] not in (".", "..")]
    if m:
        c.eq("tree directories", int(m.group(1)), sum(e["type"] == "dir" for e in ents))
        c.eq("tree files", int(m.group(2)), sum(e["type"] != "dir" for e in ents))


def check_cli(c, vmfsctl, tmp):
    """--help exits 0, bad arguments exit 2 with one line, unknown formats
    and native volumes are clear errors."""
    for cmd in ("ls", "stat", "cat", "cp", "tree"):
        p = T.run([vmfsctl, cmd, "--help"], check=False)
        c.ok("%s --help exits 0 with usage" % cmd, p.returncode == 0 and b"Usage" in p.stdout)
        p = T.run([vmfsctl, cmd, "--bogus-option", "x", "y"], check=False)
        c.ok("%s bad option exits 2 with one line" % cmd,
             p.returncode == 2 and len(p.stderr.splitlines()) == 1)
    junk = os.path.join(tmp, "junk.img")
    with open(junk, "wb") as f:
        f.truncate(64 << 20)
    for args in (["ls", junk], ["cat", junk, "/x"], ["cp", junk + ":/x", junk + ".out"]):
        p = T.run([vmfsctl] + args, check=False)
        c.ok("%s on a blank device: clear error" % args[0],
             p.returncode == 1 and b"no known file system" in p.stderr)
    if T.run([vmfsctl, "mkfs", "--help"], check=False).returncode != 0:
        print("NOTE: no mkfs in this build: native-volume messages not checked")
        return
    native = os.path.join(tmp, "native.img")
    with open(native, "wb") as f:
        f.truncate(1 << 30)
    if T.run([vmfsctl, "mkfs", "-q", "-f", native], check=False).returncode != 0:
        print("NOTE: mkfs failed: native-volume messages not checked")
        return
    for args in (["ls", native, "/"], ["cp", "/etc/hostname", native + ":/x"]):
        p = T.run([vmfsctl] + args, check=False)
        # until the native file layer has an fsview: a clear error, exit 1
        c.ok("%s on a native volume: works or says why not" % args[0],
             p.returncode == 0 or (p.returncode == 1 and b"native volumes" in p.stderr))
    os.unlink(native)


def main():
    data, vmfsctl = T.env_or_skip()
    c = T.Checker()
    tmp = T.scratch_dir("cli")
    try:
        check_cli(c, vmfsctl, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for version in (5, 6):
        T.need_oracle(version)
        tmp = T.scratch_dir("oracle")
        try:
            img = T.unpack(data, version, tmp)
            walk(c, version, img, vmfsctl, "/", tmp, {4})
            check_tree(c, img, vmfsctl)
            p = T.run([vmfsctl, "cp", img, img + ":/x"], check=False)
            c.ok("cp into VMFS%d refused" % version,
                 p.returncode == 1 and b"read-only" in p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    c.finish("vmfsr_oracle")


if __name__ == "__main__":
    main()
