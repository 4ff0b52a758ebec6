#!/usr/bin/python3
"""bench/report.py RESULTS_DIR: run by bench/run.sh after the benchmarks.
bench/report.py RESULTS_DIR --stamp NAME STARTED: run after bench NAME, adds
   date, machine, exact command and peer to RESULTS_DIR/NAME.md.

1. For every RESULTS_DIR/NAME.md (but README.md) that has no plots of its own
   (bench/scale draws its curves itself), draws each Markdown table with
   numbers as a bar chart, RESULTS_DIR/NAME-tN.png (gnuplot, log scale),
   and links them from a "Plots" section at the end of NAME.md (replaced on
   every run, between <!-- plots --> markers).
2. Writes RESULTS_DIR/README.md: per result file, its date line, headline
   ratios (a "Headlines:" list if the file has one, else the cells of its
   ratio columns: headers with "ratio", " / " or "/ peer", or cells like
   0.42x) and links to its plots.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

MBEGIN, MEND = "<!-- machine (bench/run.sh) -->", "<!-- end machine -->"
ENVS = ("VMFS_BUILD", "VMFS_OLD_BUILD", "TMPDIR", "SECS", "TGT_URL", "ISTGT_URL")
ENV_PREFIXES = ("SCALE_", "FIO_", "FUSEMETA_", "FS_BENCH_", "GLUE_BENCH_", "SANLOCK_BENCH_")
PEERS = {"fio": "kernel ext4 on a loop device (and an older build with VMFS_OLD_BUILD)",
         "fs": "none (library-level costs of this build only)",
         "fusemeta": "fuse2fs and kernel ext4 on a loop device",
         "glue": "nbdkit's file plugin",
         "iscsi": "raw libiscsi (iscsi-perf) against tgt and istgt",
         "lock": "sanlock",
         "scale": "fuse2fs, kernel ext4 on a loop device, sanlock, e2fsck (per curve, in the file)"}


def machine_line():
    cpu, mem = "?", "?"
    with open("/proc/cpuinfo") as f:
        for ln in f:
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        for ln in f:
            if ln.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(ln.split()[1]) / (1 << 20))
    return "%s, %d CPUs (nproc), %s RAM, kernel %s, load average %s" % (
        cpu, os.cpu_count(), mem, os.uname().release,
        " ".join(open("/proc/loadavg").read().split()[:3]))


def stamp(md, name, started):
    """Adds to NAME.md (just written by bench/NAME/run.sh) when and where it
    ran, the exact command and the peer (replacing an older stamp)."""
    text = strip_plots(open(md).read())
    if MBEGIN in text:
        a = text.index(MBEGIN)
        b = text.find(MEND, a)
        text = text[:a].rstrip("\n") + "\n" + (text[b + len(MEND):].lstrip("\n") if b >= 0 else "")
    env = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(os.environ.items())
                   if (k in ENVS or k.startswith(ENV_PREFIXES)) and k != "SCALE_NOTE")
    text = text.rstrip("\n") + "\n\n" + MBEGIN + "\n## Run\n\n" + "\n".join([
        "- Date: %s (started), %s (finished)" % (started, time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                          time.gmtime())),
        "- Machine: " + machine_line() + "; shared with other jobs, so absolute numbers are "
        "noisy (compare ratios within this run)",
        "- Command: `%s./run bench %s` (bench/%s/run.sh)" % (env + " " if env else "", name, name),
        "- Peer: " + PEERS.get(name, "see above")]) + "\n" + MEND + "\n"
    with open(md, "w") as f:
        f.write(text)
BEGIN, END = "<!-- plots (bench/report.py) -->", "<!-- end plots -->"
NUM = re.compile(r"-?\d+(?:\.\d+)?")


def tables(lines):
    """[(title, header cells, rows of cells)] of the Markdown tables."""
    out, i, title = [], 0, ""
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("#"):
            title = ln.lstrip("#").strip()
        if ln.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|\s*$", lines[i + 1]):
            hdr = [c.strip() for c in ln.strip().strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            out.append((title, hdr, rows))
            continue
        i += 1
    return out


CELL = re.compile(r"^(-?\d+(?:\.\d+)?)x?(?:\s*\(.*\))?(?:\s*[;/].*)?$")


def num(cell):
    """The number a cell starts with, if the cell is a figure ("12.5",
    "0.41x", "35 (2698)", "326 / 777"), else None ("4 KiB read", text)."""
    m = CELL.match(cell.replace(",", "").strip())
    return float(m.group(1)) if m else None


def label_cols(hdr, rows):
    """The leading columns that hold text (row labels), at least the first."""
    n = 1
    while n < len(hdr) - 1 and all(n >= len(r) or num(r[n]) is None for r in rows):
        n += 1
    return n


def label(r, nl):
    return " ".join(c for c in r[:nl] if c)


def bar_chart(png, title, hdr, rows, tmp):
    nl = label_cols(hdr, rows)
    cols = [j for j in range(nl, len(hdr))
            if any(j < len(r) and num(r[j]) is not None and num(r[j]) > 0 for r in rows)]
    if not cols or not rows or not shutil.which("gnuplot"):
        return False
    dat = os.path.join(tmp, "t.dat")
    with open(dat, "w") as f:
        for r in rows:
            lab = label(r, nl).replace('"', "'")
            lab = lab if len(lab) <= 38 else lab[:36] + ".."
            vals = []
            for j in cols:
                v = num(r[j]) if j < len(r) else None
                vals.append("%g" % v if v is not None and v > 0 else "?")
            f.write('"%s" %s\n' % (lab, " ".join(vals)))
    width = max(900, 60 * len(rows) * max(1, len(cols)) // 2 + 300)
    cmds = ["set terminal pngcairo noenhanced size %d,720 font 'sans,9'" % min(width, 2400),
            "set output '%s'" % png, "set title \"%s\"" % title.replace('"', "'")[:120],
            "set datafile missing '?'", "set style data histograms",
            "set style histogram clustered gap 1", "set style fill solid 0.8 border -1",
            "set logscale y", "set grid ytics", "set key outside right top",
            "set xtics rotate by -35 left", "set bmargin 16", "set yrange [*:*]"]
    parts = []
    for n, j in enumerate(cols):
        t = hdr[j].replace("'", "").replace('"', "")[:40]
        parts.append("'%s' using %d:xtic(1) title '%s'" % (dat, n + 2, t))
    cmds.append("plot " + ", ".join(parts))
    r = subprocess.run(["gnuplot"], input="\n".join(cmds) + "\n", text=True, capture_output=True,
                       timeout=120)
    if r.returncode:
        print("report.py: gnuplot: %s" % r.stderr.strip(), file=sys.stderr)
        return False
    return True


def strip_plots(text):
    if BEGIN in text:
        a = text.index(BEGIN)
        b = text.find(END, a)
        text = text[:a].rstrip("\n") + "\n" + (text[b + len(END):].lstrip("\n") if b >= 0 else "")
    return text


def plot_file(md, tmp):
    name = os.path.basename(md)[:-3]
    text = strip_plots(open(md).read())
    own = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", text)
    if own:
        with open(md, "w") as f:
            f.write(text)
        return own
    for old in glob.glob(os.path.join(os.path.dirname(md), name + "-t*.png")):
        os.unlink(old)
    pngs, links = [], []
    for n, (title, hdr, rows) in enumerate(tables(text.splitlines()), 1):
        png = "%s-t%d.png" % (name, n)
        t = "%s: %s" % (name, title) if title else name
        if bar_chart(os.path.join(os.path.dirname(md), png), "%s (table %d)" % (t, n), hdr, rows,
                     tmp):
            pngs.append(png)
            links.append("![%s, table %d](%s)" % (name, n, png))
    if links:
        text = text.rstrip("\n") + "\n\n" + BEGIN + "\n## Plots\n\nOne bar chart per table above " \
            "(log scale; a cell's first number; empty = not measured), drawn by bench/report.py.\n\n" \
            + "\n\n".join(links) + "\n" + END + "\n"
    with open(md, "w") as f:
        f.write(text)
    return pngs


def headlines(text):
    lines = text.splitlines()
    if "Headlines:" in lines:
        i = lines.index("Headlines:") + 1
        out = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("- ")):
            if lines[i].startswith("- "):
                out.append(lines[i][2:])
            i += 1
        return out
    out = []
    h1 = next((ln for ln in lines if ln.startswith("#")), "")
    for title, hdr, rows in tables(lines):
        pre = "" if ("# " + title) in h1 or not title else "[%s] " % (
            title if len(title) <= 48 else title[:46].rstrip() + "...")
        nl = label_cols(hdr, rows)
        rcols = [j for j, h in enumerate(hdr) if j >= nl and (
            "ratio" in h.lower() or " / " in h or "/" in h and "peer" in h.lower())]
        for r in rows:
            xs = [j for j in range(nl, len(r)) if re.fullmatch(r"-?\d+(\.\d+)?x", r[j])]
            cells = sorted(set(rcols + xs))
            cells = [j for j in cells if j < len(r) and r[j] not in ("", "-")]
            if cells:
                out.append("%s%s: %s" % (pre, label(r, nl), ", ".join(
                    "%s %s" % (hdr[j] if j < len(hdr) else "", r[j]) for j in cells)))
    if out:
        return out
    # no ratio anywhere in the file: first numeric column / second (lock.md:
    # lockmgr / sanlock), for the tables whose columns are systems
    for title, hdr, rows in tables(lines):
        pre = "" if ("# " + title) in h1 or not title else "[%s] " % title[:48]
        nl = label_cols(hdr, rows)
        numeric = [j for j in range(nl, len(hdr)) if any(j < len(r) and num(r[j]) is not None
                                                         for r in rows)]
        if len(numeric) >= 2:
            a, b = numeric[0], numeric[1]
            for r in rows:
                va = num(r[a]) if a < len(r) else None
                vb = num(r[b]) if b < len(r) else None
                if va is not None and vb:
                    out.append("%s%s: %s / %s %.3fx (computed by bench/report.py)" % (
                        pre, label(r, nl), hdr[a], hdr[b], va / vb))
    return out


def main():
    res = sys.argv[1]
    if len(sys.argv) == 5 and sys.argv[2] == "--stamp":
        stamp(os.path.join(res, sys.argv[3] + ".md"), sys.argv[3], sys.argv[4])
        return
    tmp = tempfile.mkdtemp(prefix="benchreport-")
    try:
        entries = []
        for md in sorted(glob.glob(os.path.join(res, "*.md"))):
            if os.path.basename(md) == "README.md":
                continue
            pngs = plot_file(md, tmp)
            text = open(md).read()
            first = next((ln for ln in text.splitlines() if ln.startswith("#")), md)
            date = re.search(r"20\d\d-\d\d-\d\d( \d\d:\d\d(:\d\d)?)?( UTC)?", text)
            entries.append((os.path.basename(md), first.lstrip("# "), date.group(0) if date else "?",
                            headlines(text), pngs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    L = ["# Benchmark results", "",
         "Regenerated by `./run bench` and `./run bench NAME` (bench/report.py) from the result "
         "files here. Ratios are ours / peer unless a line says otherwise (for times: lower is "
         "better, so a ratio above 1 means we are slower). All runs on shared, loaded 2-core "
         "VMs: compare ratios within one file, not absolute numbers across files. Scaling curves "
         "(directory size, hosts, lock contention, takeover, fsck, mount with dead slots): "
         "[scale.md](scale.md), bench/scale/scale.py (SCALE_* variables for bigger runs, e.g. "
         "SCALE_DIR_1M=1). Each file's \"Run\" section (added by bench/run.sh) gives the "
         "machine, the exact command and the peer; files without one predate it.", ""]
    for fn, title, date, heads, pngs in entries:
        L += ["## [%s](%s)" % (title, fn), "", "Run: %s (first date in the file)." % date, ""]
        if heads:
            L += ["- " + h for h in heads[:16]]
            if len(heads) > 16:
                L.append("- ... %d more in the file" % (len(heads) - 16))
        else:
            L.append("- no ratio column in this file (no peer measured, or values only side by "
                     "side): see the file")
        L.append("")
        if pngs:
            L += ["Plots: " + ", ".join("[%s](%s)" % (p, p) for p in pngs), ""]
    with open(os.path.join(res, "README.md"), "w") as f:
        f.write("\n".join(L))
    print("bench/report.py: wrote %s (%d result files)" % (os.path.join(res, "README.md"),
                                                           len(entries)))


if __name__ == "__main__":
    main()
