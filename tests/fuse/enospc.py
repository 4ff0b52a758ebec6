"""ENOSPC through vmfsmount on a small (64 MiB) native volume: filling the
data area with one file and then the file descriptors with empty files
ends in a clean ENOSPC (no other error), the mount keeps working, the data
written before stays intact, statvfs gives all the space back after rm,
and fsck is clean after unmounting."""
import hashlib
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusetest as F  # noqa: E402

CHUNK = 1 << 20


def fill_data(c, mnt):
    """Writes 1 MiB chunks until ENOSPC; returns (bytes written, md5)."""
    h = hashlib.md5()
    written, err = 0, None
    fd = os.open(os.path.join(mnt, "fill"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for i in range(1000):
            chunk = bytes([i & 0xFF]) * CHUNK
            try:
                n = os.write(fd, chunk)
            except OSError as e:
                err = F.errname(e)
                break
            h.update(chunk[:n])
            written += n
    finally:
        os.close(fd)
    c.eq("filling the data area ends in", err, "ENOSPC")
    return written, h.hexdigest()


def fill_files(c, mnt):
    os.mkdir(os.path.join(mnt, "many"))
    n, err = 0, None
    for i in range(5000):
        try:
            os.close(os.open(os.path.join(mnt, "many", "e%d" % i), os.O_WRONLY | os.O_CREAT))
        except OSError as e:
            err = F.errname(e)
            break
        n += 1
    c.eq("creating files until the FDs run out ends in", err, "ENOSPC")
    return n


def md5_of(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def main():
    vmfsctl, vmfsmount = F.tools()
    F.fuse_usable()
    c = F.Checker("fuse_enospc")
    tmp = F.scratch("enospc")
    img = os.path.join(tmp, "small.img")
    F.mkfs(vmfsctl, img, 64 << 20, "-H", "4", "-J", "256K", "--locks", "1")
    mounts = F.Mounts(vmfsmount, tmp)
    try:
        mnt = mounts.mount(img, os.path.join(tmp, "m"), host="small")
        with open(os.path.join(mnt, "keep"), "wb") as f:
            f.write(b"precious" * 1000)
        before = os.statvfs(mnt)
        written, digest = fill_data(c, mnt)
        full = os.statvfs(mnt)
        print("wrote %d MiB before ENOSPC; free blocks %d -> %d of %d" % (
            written >> 20, before.f_bfree, full.f_bfree, before.f_blocks))
        c.ok("most of the data area was usable", written >= (before.f_bfree - 2) * before.f_bsize,
             written)
        c.eq("the full file reads back what was written", md5_of(os.path.join(mnt, "fill")),
             digest)
        c.eq("size of the full file", os.stat(os.path.join(mnt, "fill")).st_size, written)
        nfiles = fill_files(c, mnt)
        print("created %d empty files before ENOSPC" % nfiles)
        c.ok("some files could be created", nfiles > 0)
        c.eq("data written before is intact", open(os.path.join(mnt, "keep"), "rb").read(),
             b"precious" * 1000)
        for i in range(nfiles):
            os.unlink(os.path.join(mnt, "many", "e%d" % i))
        os.rmdir(os.path.join(mnt, "many"))
        os.unlink(os.path.join(mnt, "fill"))
        after = os.statvfs(mnt)
        c.eq("free blocks back after rm", after.f_bfree, before.f_bfree)
        c.eq("free files back after rm", after.f_ffree, before.f_ffree)
        with open(os.path.join(mnt, "again"), "wb") as f:
            f.write(b"x" * (3 << 20))
        c.eq("writing works again", os.path.getsize(os.path.join(mnt, "again")), 3 << 20)
    finally:
        st = mounts.unmount_all()
    for m, rc in st.items():
        c.eq("vmfsmount exit status", rc, 0)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck clean: " + out, rc, 0)
    if not c.fails:
        subprocess.run(["rm", "-rf", tmp])
    c.finish()


if __name__ == "__main__":
    main()
