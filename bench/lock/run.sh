#!/usr/bin/env bash
# bench/lock/run.sh - lockmgr vs sanlock, side by side, in one run:
#   uncontended acquire+release latency (1 host),
#   contended acquisitions and hand-offs per second with 2, 4 and 8 hosts
#   (each host loops acquire/release on one exclusive lock for 3 s),
#   time from SIGKILL of the holder to acquisition by another host.
# sanlock runs with its default io_timeout (10 s) and with 2 s, the fastest
# setting documented in /work/shared/PEERS.md, one unprivileged daemon per
# host (PEERS.md); its takeover is measured once per setting (79-151 s), so
# the whole bench takes about 5-6 minutes. Images live in one scratch
# directory (same file system for both). Writes bench/results/lock.md.
set -euo pipefail
TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BUILD=${VMFS_BUILD:-$TOP/build}
LMB=$BUILD/bench/lock/lm_bench
PY=/usr/bin/python3 # Debian's python3-sanlock lives there
OUT=$TOP/bench/results/lock.md
[ -x "$LMB" ] || { echo "bench lock: $LMB missing (build first)" >&2; exit 1; }
command -v sanlock >/dev/null || { echo "bench lock: sanlock not installed" >&2; exit 1; }
$PY -c 'import sanlock' 2>/dev/null || { echo "bench lock: python3-sanlock missing" >&2; exit 1; }
WORK=$(mktemp -d /tmp/lockbench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

say() { echo "  $*" >&2; }
say "lockmgr: latency"
"$LMB" latency "$WORK/lm.img" 2000 >"$WORK/lm_lat.json"
for k in 2 4 8; do
	say "lockmgr: contention, $k hosts"
	"$LMB" contend "$WORK/lm.img" $k 3 >"$WORK/lm_c$k.json"
done
say "lockmgr: takeover (defaults 1 s / 8 s)"
"$LMB" takeover "$WORK/lm.img" >"$WORK/lm_to.json"
say "lockmgr: takeover (250 ms / 2 s)"
"$LMB" takeover "$WORK/lm.img" 250 2000 >"$WORK/lm_to2.json"
for ioto in 10 2; do
	say "sanlock io_timeout $ioto: join, latency, contention, takeover (minutes)"
	$PY "$TOP/bench/lock/sanlock_bench.py" $ioto "$WORK/sl$ioto" >"$WORK/sl$ioto.json"
done

$PY - "$WORK" "$OUT" <<'EOF'
import json, os, platform, subprocess, sys, time
w, out = sys.argv[1], sys.argv[2]
j = lambda f: json.load(open(os.path.join(w, f)))
lm_lat, lm_to, lm_to2 = j("lm_lat.json"), j("lm_to.json"), j("lm_to2.json")
lm_c = {k: j("lm_c%d.json" % k) for k in (2, 4, 8)}
sl = {t: j("sl%d.json" % t) for t in (10, 2)}
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
fs = subprocess.run(["df", "-T", w], capture_output=True, text=True).stdout.split("\n")[1].split()[1]
rows = []
def row(name, a, b, c):
    rows.append("| %s | %s | %s | %s |" % (name, a, b, c))
f1 = lambda x: "%.0f" % x
row("uncontended acquire+release, mean (us)", f1(lm_lat["mean"]),
    f1(sl[10]["latency_us"]["mean"]), f1(sl[2]["latency_us"]["mean"]))
row("uncontended acquire+release, p50 / p99 (us)",
    "%.0f / %.0f" % (lm_lat["p50"], lm_lat["p99"]),
    "%.0f / %.0f" % (sl[10]["latency_us"]["p50"], sl[10]["latency_us"]["p99"]),
    "%.0f / %.0f" % (sl[2]["latency_us"]["p50"], sl[2]["latency_us"]["p99"]))
for k in (2, 4, 8):
    s10, s2 = sl[10]["contend"][str(k)], sl[2]["contend"][str(k)]
    row("%d hosts: hand-offs/s (acquisitions/s)" % k,
        "%.0f (%.0f)" % (lm_c[k]["handoffs_per_s"], lm_c[k]["acq_per_s"]),
        "%.1f (%.0f)" % (s10["handoffs_per_s"], s10["acq_per_s"]),
        "%.1f (%.0f)" % (s2["handoffs_per_s"], s2["acq_per_s"]))
t = lambda v: "%.1f" % v if v is not None else "> 400 (gave up)"
row("SIGKILL of holder -> acquired by another host (s)",
    "%s (1 s / 8 s); %s (250 ms / 2 s)" % (t(lm_to["takeover_s"]), t(lm_to2["takeover_s"])),
    t(sl[10].get("takeover_s")), t(sl[2].get("takeover_s")))
row("joining (lm_join / add_lockspace) (s)", "%.4f" % (lm_lat["join_us"] / 1e6),
    "%.1f" % sl[10]["join_s"],
    "%.1f" % sl[2]["join_s"])
with open(out, "w") as f:
    f.write("# bench lock: lockmgr vs sanlock\n\n")
    f.write("Run %s on %s (%s, %d CPUs, kernel %s); images on %s in /tmp; "
            "machine shared with other jobs (expect +-30%%).\n"
            "Command: `./run bench lock` (bench/lock/run.sh).\n\n"
            % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), platform.node(), cpu,
               os.cpu_count(), platform.release(), fs))
    f.write("| measurement | lockmgr | sanlock io_timeout 10 (default) | sanlock io_timeout 2 |\n")
    f.write("|---|---|---|---|\n")
    f.write("\n".join(rows) + "\n\n")
    f.write("Notes: each contending host loops acquire/release of one exclusive lock for 3 s;\n"
            "a hand-off is an acquisition by a different host than the previous one. lockmgr\n"
            "waiters poll with jittered backoff (50 us .. 10 ms) and are not fair: a releasing\n"
            "host often re-acquires at once. sanlock's acquire fails at once on a held lease;\n"
            "its waiters retry every 1 ms (contention) or 1 s (takeover, as PEERS.md says).\n"
            "sanlock latency is measured through python3-sanlock (daemon round trips).\n")
print(open(out).read())
EOF
