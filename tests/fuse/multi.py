"""Several hosts through FUSE: 2, then 4 vmfsmount processes of one image
(each its own host, -o host=hN) run workers at the same time that create,
write, append, rename and delete files and directories, each in a
directory of its own and all in one shared directory. Afterwards every
mount lists the same tree with the same contents (md5), each host's own
directory holds exactly what its worker's model says, no operation failed
with an error other than the races the shared directory allows, and after
unmounting all, vmfsctl fsck is clean.

  multi.py                      the test
  multi.py worker DIR IDX SEED N one worker (prints a JSON report)"""
import errno
import hashlib
import json
import os
import random
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusetest as F  # noqa: E402

OPS = int(os.environ.get("FUSE_MULTI_OPS", "200"))
WORKER_TIMEOUT = 240
# Races with other hosts in the shared directory: the entry went or came
# meanwhile (ENOENT, EEXIST, ENOTEMPTY) or the file is open for writing on
# another host (EBUSY: VMFS open-file locks).
SHARED_OK = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EBUSY}


def md5(data):
    return hashlib.md5(data).hexdigest()


def payload(rng, n):
    return rng.randbytes(n) if hasattr(rng, "randbytes") else bytes(rng.getrandbits(8)
                                                                    for _ in range(n))


def write_file(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
        if len(data) & 1:
            os.fsync(fd)
    finally:
        os.close(fd)


def worker(top, idx, seed, nops):
    rng = random.Random(seed)
    own = os.path.join(top, "own-%d" % idx)
    shared = os.path.join(top, "shared")
    os.makedirs(own, exist_ok=True)
    model = {}  # own-dir name -> content
    rep = {"ops": 0, "unexpected": [], "races": {}}

    def own_op():
        names = sorted(model)
        r = rng.random()
        if r < 0.35 or not names:
            n = "f%d" % rng.randrange(40)
            data = payload(rng, rng.choice((0, 17, 3000, 5000, 70000)))
            write_file(os.path.join(own, n), data)
            model[n] = data
        elif r < 0.5:
            n = rng.choice(names)
            extra = payload(rng, rng.randrange(1, 9000))
            write_file(os.path.join(own, n), extra, os.O_WRONLY | os.O_APPEND)
            model[n] += extra
        elif r < 0.65:
            a, b = rng.choice(names), "f%d" % rng.randrange(40)
            os.rename(os.path.join(own, a), os.path.join(own, b))
            if a != b:
                model[b] = model.pop(a)
        elif r < 0.8:
            n = rng.choice(names)
            os.unlink(os.path.join(own, n))
            del model[n]
        else:
            n = rng.choice(names)
            with open(os.path.join(own, n), "rb") as f:
                got = f.read()
            if got != model[n]:
                rep["unexpected"].append("own %s: content differs" % n)

    def shared_op():
        r = rng.random()
        n = "s%d" % rng.randrange(12)
        p = os.path.join(shared, n)
        if r < 0.3:
            write_file(p, b"%d:%d:" % (idx, rep["ops"]) + payload(rng, rng.randrange(0, 6000)))
        elif r < 0.45:
            os.rename(p, os.path.join(shared, "s%d" % rng.randrange(12)))
        elif r < 0.6:
            os.unlink(p)
        elif r < 0.7:
            os.mkdir(os.path.join(shared, "d%d" % rng.randrange(4)))
        elif r < 0.8:
            os.rmdir(os.path.join(shared, "d%d" % rng.randrange(4)))
        elif r < 0.9:
            # move a file between its own directory and the shared one
            names = sorted(model)
            if names:
                a = rng.choice(names)
                os.rename(os.path.join(own, a), os.path.join(shared, "m%d-%s" % (idx, a)))
                del model[a]
        else:
            with open(p, "rb") as f:
                f.read()

    for i in range(nops):
        rep["ops"] += 1
        in_shared = rng.random() < 0.5
        try:
            (shared_op if in_shared else own_op)()
        except OSError as e:
            name = F.errname(e)
            if in_shared and e.errno in SHARED_OK:
                rep["races"][name] = rep["races"].get(name, 0) + 1
            else:
                rep["unexpected"].append("%s op %d: %s" % ("shared" if in_shared else "own", i, e))
    rep["model"] = {n: md5(d) for n, d in model.items()}
    print(json.dumps(rep))


def snapshot(mnt):
    out = {}
    for dp, dns, fns in os.walk(mnt):
        r = os.path.relpath(dp, mnt)
        out[r] = "dir"
        for n in fns:
            with open(os.path.join(dp, n), "rb") as f:
                out[os.path.join(r, n)] = md5(f.read())
    return out


def round_(c, vmfsctl, vmfsmount, tmp, nhosts):
    img = os.path.join(tmp, "multi%d.img" % nhosts)
    F.mkfs(vmfsctl, img, 2 << 30)
    mounts = F.Mounts(vmfsmount, tmp)
    procs = []
    t0 = time.monotonic()
    try:
        mnts = [mounts.mount(img, os.path.join(tmp, "m%d-%d" % (nhosts, i)), host="h%d" % i)
                for i in range(nhosts)]
        os.mkdir(os.path.join(mnts[0], "shared"))
        for i, m in enumerate(mnts):
            procs.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "worker", m, str(i),
                 str(1000 * nhosts + i), str(OPS)], stdout=subprocess.PIPE))
        reps = []
        for i, p in enumerate(procs):
            try:
                out, _ = p.communicate(timeout=WORKER_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            c.eq("%d hosts: worker %d exit status" % (nhosts, i), p.returncode, 0)
            reps.append(json.loads(out) if p.returncode == 0 else None)
        ops = sum(r["ops"] for r in reps if r)
        print("%d hosts: %d ops in %.1f s; races in the shared directory: %s" % (
            nhosts, ops, time.monotonic() - t0, [r["races"] for r in reps if r]))
        for i, r in enumerate(reps):
            if r:
                c.eq("%d hosts: worker %d unexpected errors" % (nhosts, i), r["unexpected"], [])
        snaps = [snapshot(m) for m in mnts]
        for i in range(1, nhosts):
            c.ok("%d hosts: mount %d sees the same tree as mount 0" % (nhosts, i),
                 snaps[i] == snaps[0],
                 sorted(set(snaps[i].items()) ^ set(snaps[0].items()))[:10])
        for i, r in enumerate(reps):
            if not r:
                continue
            own = {k[len("own-%d/" % i):]: v for k, v in snaps[0].items()
                   if k.startswith("own-%d/" % i)}
            c.eq("%d hosts: own-%d matches its worker's model" % (nhosts, i), own, r["model"])
        c.ok("%d hosts: the shared directory was used" % nhosts,
             any(k.startswith("shared/") for k in snaps[0]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        st = mounts.unmount_all()
    for m, rc in st.items():
        c.eq("%d hosts: vmfsmount %s exit status" % (nhosts, os.path.basename(m)), rc, 0)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("%d hosts: fsck clean: %s" % (nhosts, out), rc, 0)
    os.unlink(img)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    vmfsctl, vmfsmount = F.tools()
    F.fuse_usable()
    c = F.Checker("fuse_multihost")
    tmp = F.scratch("multi")
    for n in (2, 4):
        round_(c, vmfsctl, vmfsmount, tmp, n)
    if not c.fails:
        subprocess.run(["rm", "-rf", tmp])
    c.finish()


if __name__ == "__main__":
    main()
