"""Pieces the Python benchmarks share (bench/fio, bench/fusemeta): mounting
this build's vmfsmount on a fresh volume, kernel ext4 on a loop device, and
waiting for and stopping FUSE daemons (by PID, never by name)."""
import contextlib
import os
import subprocess
import time


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


def stop_fuse(p, mnt):
    """Unmounts and waits for the daemon p; kills it (by PID) if it hangs."""
    subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=30)
        subprocess.run(["fusermount3", "-uz", mnt], stderr=subprocess.DEVNULL)


def sparse_image(tmp, tag, size):
    img = os.path.join(tmp, tag + ".img")
    with open(img, "wb") as f:
        f.truncate(size)
    return img


@contextlib.contextmanager
def vmfs_mounted(build, tmp, tag, size, opts=()):
    """A fresh volume of `size` bytes made by build's vmfsctl, mounted by its
    vmfsmount (with the extra arguments opts) on tmp/tag; yields the
    mountpoint."""
    img = sparse_image(tmp, tag, size)
    mnt = os.path.join(tmp, tag)
    os.makedirs(mnt)
    subprocess.run([os.path.join(build, "fuse-tools", "vmfsctl"), "mkfs", "-q", img],
                   check=True, timeout=300)
    p = subprocess.Popen([os.path.join(build, "fuse-tools", "vmfsmount"), "-f", *opts, img, mnt],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_mounted(mnt, p, "vmfsmount")
        yield mnt
    finally:
        stop_fuse(p, mnt)
        os.unlink(img)


def ext4_image(tmp, tag, size):
    img = sparse_image(tmp, tag, size)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                    img], check=True, stdout=subprocess.DEVNULL)
    return img


@contextlib.contextmanager
def ext4_loop_mounted(tmp, tag, size, skip_ok):
    """A fresh ext4 image on a loop device (direct I/O) mounted on tmp/tag;
    yields the mountpoint, or None when loop devices or mount are not
    permitted and skip_ok (otherwise that is an error)."""
    img = ext4_image(tmp, tag, size)
    mnt = os.path.join(tmp, tag)
    os.makedirs(mnt)
    try:
        lo = subprocess.run(["losetup", "--direct-io=on", "-f", "--show", img],
                            capture_output=True, text=True, check=not skip_ok)
        if lo.returncode:
            print("ext4 baseline skipped: losetup not permitted (%s)" % lo.stderr.strip())
            yield None
            return
        loop = lo.stdout.strip()
        try:
            m = subprocess.run(["mount", loop, mnt], capture_output=True, text=True,
                               check=not skip_ok)
            if m.returncode:
                print("ext4 baseline skipped: mount not permitted (%s)" % m.stderr.strip())
                yield None
                return
            try:
                yield mnt
            finally:
                subprocess.run(["umount", mnt])
        finally:
            subprocess.run(["losetup", "-d", loop])
    finally:
        os.unlink(img)
