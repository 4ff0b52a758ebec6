#!/usr/bin/python3
"""sanlock side of bench/lock: the same three measurements as lm_bench.

Usage: sanlock_bench.py IO_TIMEOUT WORKDIR [--no-takeover]
(SANLOCK_BENCH_HOSTS: contending host counts, default 2,4,8, at most 8;
SANLOCK_BENCH_SECS: seconds per count, default 3)
Prints one JSON object: join_s, latency_us {mean,p50,p99}, contend {hosts:
{acq_per_s, handoffs_per_s}}, takeover_s.

How sanlock runs here (see /work/shared/PEERS.md): one unprivileged daemon
per simulated host, each with its own SANLOCK_RUN_DIR, no watchdog; the
lockspace (delta leases) and the resource (paxos lease) live on image files.
A lease belongs to a registered process; acquire on a held lease fails at
once, so waiters retry (1 ms sleep for contention, 1 s for the takeover, as
PEERS.md prescribes).
"""
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

HOSTS = 8
LS = b"LMBENCH"
RES = b"RES"


def sh(args, env=None, check=True):
    return subprocess.run(args, env=env, check=check, capture_output=True, text=True)


def host_env(work, i):
    env = dict(os.environ)
    env["SANLOCK_RUN_DIR"] = os.path.join(work, "run%d" % i)
    env["SANLOCK_PRIVILEGED"] = "0"
    return env


def start_daemon(work, i):
    env = host_env(work, i)
    os.makedirs(env["SANLOCK_RUN_DIR"], exist_ok=True)
    log = open(os.path.join(work, "daemon%d.log" % i), "w")
    return subprocess.Popen(
        ["sanlock", "daemon", "-D", "-w", "0", "-U", "root", "-G", "root", "-l", "0",
         "-L", "-1", "-S", "-1", "-e", "benchhost%d" % i],
        env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_daemon(work, i):
    env = host_env(work, i)
    for _ in range(200):
        if sh(["sanlock", "client", "status"], env=env, check=False).returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError("sanlock daemon %d did not start" % i)


def in_host(work, i):
    os.environ["SANLOCK_RUN_DIR"] = os.path.join(work, "run%d" % i)
    os.environ["SANLOCK_PRIVILEGED"] = "0"


def latency_worker(work, res_img, n, q):
    in_host(work, 1)
    import sanlock
    fd = sanlock.register()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        sanlock.acquire(LS, RES, [(res_img, 0)], slkfd=fd)
        sanlock.release(LS, RES, [(res_img, 0)], slkfd=fd)
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    q.put({"mean": sum(times) / n, "p50": times[n // 2], "p99": times[int(n * 0.99)]})


def contend_worker(work, i, res_img, secs, last, acq, hand, start):
    in_host(work, i)
    import sanlock
    fd = sanlock.register()
    start.wait()
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            sanlock.acquire(LS, RES, [(res_img, 0)], slkfd=fd)
        except sanlock.SanlockException:
            time.sleep(0.001)
            continue
        with acq.get_lock():
            acq.value += 1
        if last.value != i:
            with hand.get_lock():
                hand.value += 1
            last.value = i
        sanlock.release(LS, RES, [(res_img, 0)], slkfd=fd)


def contend(work, res_img, k, secs=3.0):
    last, acq, hand = mp.Value("i", 0), mp.Value("i", 0), mp.Value("i", 0)
    start = mp.Event()
    ps = [mp.Process(target=contend_worker,
                     args=(work, i, res_img, secs, last, acq, hand, start))
          for i in range(1, k + 1)]
    for p in ps:
        p.start()
    time.sleep(0.5)
    start.set()
    for p in ps:
        p.join()
    return {"acq_per_s": acq.value / secs, "handoffs_per_s": hand.value / secs}


def holder(work, res_img, ready):
    in_host(work, 1)
    import sanlock
    fd = sanlock.register()
    sanlock.acquire(LS, RES, [(res_img, 0)], slkfd=fd)
    ready.set()
    while True:
        time.sleep(1)


def takeover(work, res_img, daemon1):
    ready = mp.Event()
    h = mp.Process(target=holder, args=(work, res_img, ready))
    h.start()
    ready.wait(60)
    time.sleep(1)
    daemon1.send_signal(signal.SIGKILL)
    os.kill(h.pid, signal.SIGKILL)
    t0 = time.monotonic()
    daemon1.wait()
    h.join()
    in_host(work, 2)
    import sanlock
    fd = sanlock.register()
    while time.monotonic() - t0 < 400:
        try:
            sanlock.acquire(LS, RES, [(res_img, 0)], slkfd=fd)
            t = time.monotonic() - t0
            sanlock.release(LS, RES, [(res_img, 0)], slkfd=fd)
            return t
        except sanlock.SanlockException:
            time.sleep(1)
    return None


def main():
    ioto, work = sys.argv[1], sys.argv[2]
    do_takeover = "--no-takeover" not in sys.argv
    os.makedirs(work, exist_ok=True)
    ls_img, res_img = os.path.join(work, "ls.img"), os.path.join(work, "res.img")
    for f in (ls_img, res_img):
        with open(f, "wb") as fh:
            fh.truncate(8 << 20)
    sh(["sanlock", "direct", "init", "-o", ioto, "-s", "%s:0:%s:0" % (LS.decode(), ls_img)])
    sh(["sanlock", "direct", "init", "-o", ioto, "-r",
        "%s:%s:%s:0" % (LS.decode(), RES.decode(), res_img)])
    daemons = {i: start_daemon(work, i) for i in range(1, HOSTS + 1)}
    out = {"io_timeout": int(ioto)}
    try:
        for i in daemons:
            wait_daemon(work, i)
        t0 = time.monotonic()
        joins = [subprocess.Popen(["sanlock", "client", "add_lockspace", "-o", ioto, "-s",
                                   "%s:%d:%s:0" % (LS.decode(), i, ls_img)],
                                  env=host_env(work, i), stdout=subprocess.DEVNULL)
                 for i in daemons]
        for j in joins:
            if j.wait() != 0:
                raise RuntimeError("add_lockspace failed")
        out["join_s"] = time.monotonic() - t0
        q = mp.Queue()
        p = mp.Process(target=latency_worker, args=(work, res_img.encode(), 200, q))
        p.start()
        out["latency_us"] = q.get(timeout=300)
        p.join()
        levels = [int(k) for k in os.environ.get("SANLOCK_BENCH_HOSTS", "2,4,8").split(",")]
        secs = float(os.environ.get("SANLOCK_BENCH_SECS", "3"))
        out["contend"] = {k: contend(work, res_img.encode(), k, secs) for k in levels}
        if do_takeover:
            out["takeover_s"] = takeover(work, res_img.encode(), daemons[1])
    finally:
        for d in daemons.values():
            if d.poll() is None:
                d.send_signal(signal.SIGKILL)
                d.wait()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
