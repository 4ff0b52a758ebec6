#!/usr/bin/env bash
# test_readme.sh: the README's tour runs as written. Every ```sh block after
# "## Tour" in README.md runs in order in one bash (set -euo pipefail), from
# a stand-in for the top of the clone (build/ -> this build) with HOME in a
# scratch directory, so `~/vmfs-try` is ours. A block after the marker
# <!-- readme-test: needs datastore.img --> runs when the project's VMFS5
# sample (../shared/data) can be unpacked there as datastore.img, and is
# left out with a message otherwise. Then the output must show what the
# README says it shows, and the volume must be clean.
# Exit: 0 pass, 77 skip (no FUSE), 1 fail.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${VMFS_BUILD:?}"
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/readme.XXXXXX")
try=$T/home/vmfs-try

cleanup() {
	local m p
	for m in "$try"/mnt/*; do
		[ -d "$m" ] && mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m"; }
	done
	# vmfsmount daemons this test started (their command lines name $T)
	for p in $(pgrep -f -- "$T/" 2>/dev/null); do
		[ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	[ -f "$T/out" ] && tail -40 "$T/out"
	exit 1
}

[ -e /dev/fuse ] && command -v fusermount3 >/dev/null || { echo "SKIP: no FUSE here"; exit 77; }
mkdir -p "$T/top" "$try"
ln -s "$VMFS_BUILD" "$T/top/build"

have_ds=0
sample=${VMFS_SHARED:-$top/../shared}/data/vmfs5.bin.gz
if [ -f "$sample" ] && zcat "$sample" | dd of="$try/datastore.img" bs=64k conv=sparse status=none; then
	have_ds=1
else
	echo "note: no VMFS5 sample at $sample: the real-datastore block is left out"
fi

python3 - "$top/README.md" "$have_ds" >"$T/script.sh" <<'PY' || fail "README: could not extract the tour"
import re, sys
text = open(sys.argv[1]).read()
have_ds = sys.argv[2] == "1"
tour = text[text.index("\n## Tour"):]
blocks, blk, need = [], None, None
for line in tour.split("\n"):
    if blk is None:
        m = re.match(r"<!-- readme-test: needs (\S+) -->", line)
        if m:
            need = m.group(1)
        elif line.strip() == "```sh":
            blk = []
    elif line.strip() == "```":
        if need is None or (need == "datastore.img" and have_ds):
            blocks.append("\n".join(blk))
        blk, need = None, None
    else:
        blk.append(line)
assert len(blocks) >= 5, "too few command blocks in the tour: %d" % len(blocks)
print("set -euo pipefail")
for i, b in enumerate(blocks, 1):
    print("echo '### block %d'" % i)
    print(b)
print("echo '### README done'")
PY

(cd "$T/top" && HOME="$T/home" timeout -k 10 600 bash "$T/script.sh") >"$T/out" 2>&1
rc=$?
[ $rc = 0 ] || fail "the README's commands stopped with exit $rc at $(grep '^### block' "$T/out" | tail -1)"
grep -q "^### README done" "$T/out" || fail "the README's commands did not all run"
for want in "disk.raw is intact" "^hello$" "esx2 was refused" "Device or resource busy" \
	"vm1 runs while esx1 holds its lock" "lun.img: clean"; do
	grep -q -- "$want" "$T/out" || fail "README output lacks '$want'"
done
V=$VMFS_BUILD/fuse-tools/vmfsctl
"$V" fsck -n "$try/lun.img" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "the volume is not clean after the README"; }
grep -q "0 heartbeat slots used" "$T/fsck" || { cat "$T/fsck"; fail "hosts are left in the heartbeat"; }
if [ $have_ds = 1 ]; then
	"$V" cat "$try/lun.img" /file5 | cmp - "$try/file5" || fail "the migrated file differs"
fi
echo "PASS: $(grep -c '^### block' "$T/out") README command blocks ran as written"
