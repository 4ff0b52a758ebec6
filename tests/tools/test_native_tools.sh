#!/usr/bin/env bash
# vmfsctl mkfs / info / fsck on native volumes: round trip on sparse images at
# 512 B and 4 KiB sectors, JSON output, fsck clean on a fresh image, one
# corruption per metadata region (fsck must exit 4 and name the region),
# header repair with -y, mkfs refusing used devices, the too-small error, and
# progress on a large sparse image.
set -u
V=${VMFSCTL:?VMFSCTL not set}
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/format-tools.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# run EXPECTED_RC CMD...: runs vmfsctl, keeps stdout/stderr in $T/out $T/err.
run() {
	local want=$1 rc
	shift
	"$V" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "vmfsctl $* exited $rc, expected $want"
		sed 's/^/  | /' "$T/out" "$T/err" | head -20 >&2
		return 1
	fi
	return 0
}

# Python helper: region offset by name from info --json.
region() { # region IMGURI NAME
	"$V" info --json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print([r["offset"] for r in d["regions"] if r["name"] == sys.argv[1]][0])' "$2"
}

flip() { # flip FILE OFFSET: xor one bit (twice restores)
	python3 - "$1" "$2" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0x10]))
EOF
}

# ---- round trip at both sector sizes -------------------------------------
for sec in 512 4096; do
	img=$T/rt$sec.img
	truncate -s 2G "$img"
	uri="file:$img?sector=$sec"
	run 0 mkfs -L "rt $sec" -b 256K -H 8 -J 1M "$uri" || continue
	grep -q "Block size: *262144" "$T/out" || fail "mkfs summary lacks the block size"
	grep -q "heartbeat" "$T/out" || fail "mkfs summary lacks the regions"
	[ "$(du -k "$img" | cut -f1)" -lt 20000 ] || fail "mkfs did not keep the image sparse"
	run 0 info --json "$uri" || continue
	python3 - "$T/out" "$sec" <<'EOF' || fail "info --json content ($sec)"
import json, sys
d = json.load(open(sys.argv[1]))
sec = int(sys.argv[2])
assert d["format"] == "native", d
assert d["label"] == "rt %d" % sec, d["label"]
assert d["sector_size"] == sec and d["block_size"] == 262144 and d["max_hosts"] == 8
assert d["volume_size"] == 2 << 30
assert isinstance(d["nfds"], int) and d["nfds"] > 0, d  # the text says "Files (FDs)"
names = [r["name"] for r in d["regions"]]
for n in ("primary header", "volume lock", "heartbeat", "lock area", "journals", "FD clusters",
          "PB clusters", "SB clusters", "FB clusters", "data", "backup header"):
    assert n in names, n
offs = [(r["offset"], r["length"]) for r in d["regions"]]
for (o1, l1), (o2, l2) in zip(offs, offs[1:]):
    assert o1 + l1 <= o2, (o1, l1, o2)
    assert o2 % 4096 == 0
assert len(d["slots"]) == 8 and all(s["state"] == "free" for s in d["slots"])
assert d["slots_free"] == 8
EOF
	run 0 info "$uri" && grep -q "8 of 8 slots free" "$T/out" || fail "info text ($sec)"
	run 0 fsck "$uri" && grep -q "clean" "$T/out" || fail "fsck not clean on a fresh image ($sec)"
	run 0 fsck --json "$uri" &&
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["clean"] and d["fds_used"] == 1, d' \
			"$T/out" || fail "fsck --json ($sec)"
done

# ---- one corruption per region ---------------------------------------------
img=$T/c.img
truncate -s 1G "$img"
run 0 mkfs -q -H 8 -J 1M "$img" || exit 1
[ ! -s "$T/out" ] || fail "mkfs -q printed something"
fd=$(region "$img" "FD clusters")
pb=$(region "$img" "PB clusters")
sb=$(region "$img" "SB clusters")
fb=$(region "$img" "FB clusters")
jr=$(region "$img" "journals")
bk=$(region "$img" "backup header")
# name offset expected-region-text
cases=(
	"primary header|$((1048576 + 0x7C))|volume header"
	"backup header|$((bk + 0x7C))|backup volume header"
	"journal header|$((jr + 0x30)),$((jr + 4096 + 0x30))|journal 0 header"
	"journal header 3|$((jr + 3 * 1048576 + 0x20)),$((jr + 3 * 1048576 + 4096 + 0x18))|journal 3 header"
	"FD cluster header|$((fd + 4096 + 0x18))|FD cluster 0 header"
	"PB cluster header|$((pb + 4096 + 0x14))|PB cluster 0 header"
	"SB cluster header|$((sb + 4096 + 0x20))|SB cluster 0 header"
	"FB cluster header|$((fb + 4096 + 0x10))|FB cluster 0 header"
	"FB bitmap|$((fb + 4096 + 0x100 + 5))|FB cluster 0 header"
	"SB bitmap|$((sb + 4096 + 0x100))|SB cluster 0 header"
	"root FD|$((fd + 8192 + 4096 + 0x1C))|FD 0:0"
	"root dir header|$((sb + 8192 + 0x44))|FD 0:0 directory block 0"
	"root dir bucket|$((sb + 8192 + 4096 + 0x14))|FD 0:0 directory block 1"
)
for c in "${cases[@]}"; do
	IFS='|' read -r name offs want <<<"$c"
	for off in ${offs//,/ }; do flip "$img" "$off"; done
	if run 4 fsck "$img"; then
		grep -q "^fsck: $want" "$T/out" || fail "fsck output for '$name' does not name '$want': $(head -3 "$T/out")"
	fi
	for off in ${offs//,/ }; do flip "$img" "$off"; done
done
run 0 fsck "$img" || fail "image not clean after restoring every flip"
# One bad journal header copy is what a torn header write leaves: harmless.
for off in $((jr + 0x30)) $((jr + 4096 + 0x30)); do
	flip "$img" "$off"
	run 0 fsck "$img" || fail "one bad journal header copy (at $off) is not clean"
	flip "$img" "$off"
done

# Garbage in atomic units: heartbeat slot, lock area unit, volume lock, an FD
# lock unit.
hb=$(region "$img" "heartbeat")
lk=$(region "$img" "lock area")
head -c 4096 /dev/urandom >"$T/garbage"
for c in "heartbeat slot 5|$((hb + 5 * 4096))" "lock area unit 3|$((lk + 3 * 4096))" \
	"volume lock 0|$((1048576 + 4096))" "FD 0:0 lock|$((fd + 8192))" \
	"PB cluster 0 lock|$pb"; do
	IFS='|' read -r want off <<<"$c"
	dd if="$img" of="$T/save" bs=4096 skip=$((off / 4096)) count=1 status=none
	dd if="$T/garbage" of="$img" bs=4096 seek=$((off / 4096)) count=1 conv=notrunc status=none
	if run 4 fsck "$img"; then
		grep -q "^fsck: $want" "$T/out" || fail "fsck does not name '$want': $(head -3 "$T/out")"
	fi
	dd if="$T/save" of="$img" bs=4096 seek=$((off / 4096)) count=1 conv=notrunc status=none
done
run 0 fsck "$img" || fail "image not clean after restoring the units"

# info on a used slot (garbage) says used; with the primary bad it warns and
# uses the backup.
dd if="$T/garbage" of="$img" bs=4096 seek=$(((hb + 2 * 4096) / 4096)) count=1 conv=notrunc status=none
run 0 info --json "$img" &&
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["slots"][2]["state"]=="used" and d["slots_used"]==1, d["slots"][2]' \
		"$T/out" || fail "info does not show slot 2 as used"
dd if=/dev/zero of="$img" bs=4096 seek=$(((hb + 2 * 4096) / 4096)) count=1 conv=notrunc status=none
flip "$img" $((1048576 + 0x80))
run 0 info "$img" && grep -q "using the backup" "$T/err" || fail "info does not warn about the primary header"
# fsck -y repairs the primary from the backup: exit 1, then clean.
run 1 fsck -y "$img" && grep -q "1 problem corrected" "$T/out" || fail "fsck -y did not repair"
run 0 fsck "$img" || fail "fsck not clean after the repair"
# -n never writes.
flip "$img" $((bk + 0x80))
run 4 fsck -n "$img"
run 4 fsck "$img" || fail "fsck -n wrote something"
run 1 fsck -y "$img"
run 0 fsck "$img"

# With lockmgr records on disk (vmfsctl lock, when in the build): while a
# named lock is held, info shows the live slot and fsck accepts the slot and
# the lock record; after release both units stay non-zero and valid.
if "$V" --help | grep -q "^  lock "; then
	"$V" lock --host fmt-test "$img" fmt-lock -- \
		sh -c '"$0" info --json "$1" >"$2/held.json" && "$0" fsck --json "$1" >"$2/held.fsck"' \
		"$V" "$img" "$T" >"$T/out" 2>"$T/err" || fail "vmfsctl lock -- info/fsck failed: $(cat "$T/err")"
	python3 - "$T/held.json" "$T/held.fsck" <<'EOF' || fail "info/fsck while a lock is held"
import json, sys
info = json.load(open(sys.argv[1])); fsck = json.load(open(sys.argv[2]))
used = [s for s in info["slots"] if s["state"] == "used"]
assert len(used) == 1 and "fmt-test" in used[0]["desc"], used
assert fsck["clean"] and fsck["heartbeat_slots_used"] == 1 and fsck["lock_units_used"] == 1, fsck
EOF
	run 0 fsck "$img" || fail "fsck after the lock was released"
	# the slot the lock's host left is free: not counted as used (was 1)
	run 0 fsck --json "$img" &&
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["heartbeat_slots_used"] == 0, d' "$T/out" ||
		fail "fsck counts a slot its host left"
fi

# ---- mkfs refuses used devices -------------------------------------------------
run 1 mkfs "$img" && grep -q "libvmfs volume.*--force" "$T/err" ||
	fail "mkfs did not refuse a formatted device"
[ "$(wc -l <"$T/err")" = 1 ] || fail "mkfs refusal is not one line"
run 0 mkfs -f -q -H 4 -J 1M "$img" || fail "mkfs --force failed"
run 0 fsck "$img"
n=$T/n.img
truncate -s 512M "$n"
# 4 MiB of data in the middle (mkfs samples 256 blocks spread evenly).
head -c 4M /dev/urandom | dd of="$n" bs=1M seek=300 conv=notrunc status=none
run 1 mkfs -H 4 -J 1M "$n" && grep -q "non-zero data" "$T/err" || fail "mkfs did not refuse non-empty data"
run 0 mkfs -n -H 4 -J 1M "$n" && grep -q "Would create" "$T/out" || fail "mkfs --dry-run"
run 1 mkfs -H 4 -J 1M "$n" # dry run wrote nothing
# Issue 9 defect 10: 4 KiB at 1.2 MiB (past the first MiB, between the
# samples) and 100 bytes at an odd offset in the data area were overwritten
# (or ignored) without --force. Every allocated extent of an image is read.
for off in 1258291 $((5 * 1024 * 1024 * 1024 + 12345)); do
	rm -f "$n"
	truncate -s 8G "$n"
	head -c 4096 /dev/urandom | tr '\0' x | dd of="$n" bs=1 seek="$off" conv=notrunc status=none
	run 1 mkfs -H 4 -J 1M "$n" && grep -q "non-zero data at byte $off " "$T/err" ||
		fail "mkfs did not refuse data at byte $off: $(cat "$T/err")"
	run 0 mkfs -q -f -H 4 -J 1M "$n" && run 0 fsck "$n" || fail "mkfs -f over data at $off"
done
rm -f "$n"
if command -v mkfs.ext4 >/dev/null; then
	e=$T/e.img
	truncate -s 64M "$e"
	mkfs.ext4 -q -F "$e" >/dev/null 2>&1
	run 1 mkfs -H 1 -J 256K "$e" && grep -q "ext2/3/4" "$T/err" || fail "mkfs did not refuse ext4"
	run 0 mkfs -f -q -H 1 -J 256K "$e" && run 0 fsck "$e" || fail "mkfs -f over ext4"
	if command -v blkid >/dev/null && blkid -p "$e" 2>/dev/null | grep -q ext4; then
		fail "ext4 signature survives mkfs --force"
	fi
fi

# Real VMFS5/6 datastores: mkfs refuses them, fsck says it cannot check them,
# info hands over to the VMFS reader.
for ver in 5 6; do
	gz=${VMFS_SHARED:-/work/shared}/data/vmfs$ver.bin.gz
	[ -r "$gz" ] || continue
	r=$T/vmfs$ver.img
	zcat "$gz" | cp --sparse=always /dev/stdin "$r"
	run 1 mkfs "$r" && grep -q "VMFS$ver datastore.*--force" "$T/err" ||
		fail "mkfs did not refuse a VMFS$ver datastore"
	run 8 fsck "$r" && grep -q "VMFS5/6" "$T/err" || fail "fsck on VMFS$ver"
	if "$V" info "$r" >"$T/out" 2>"$T/err"; then
		grep -q "VMFS$ver" "$T/out" || fail "info on VMFS$ver does not say VMFS$ver"
	else
		grep -q "cannot read VMFS5/6" "$T/err" || fail "info on VMFS$ver: $(cat "$T/err")"
	fi
	rm -f "$r"
done

# ---- too small, bad options -------------------------------------------------------
s=$T/s.img
truncate -s 8M "$s"
run 1 mkfs "$s" && grep -q "at least [0-9]* bytes" "$T/err" || fail "too-small error"
run 2 mkfs -b 3M "$s"
run 2 mkfs -H 0 "$s"
run 2 mkfs -J 12345 "$s"
run 2 mkfs --hb-interval 1000 --hb-timeout 2000 "$s"
run 2 mkfs -L "$(printf 'x%.0s' {1..64})" "$s"
run 0 mkfs -q -H 1 -J 256K --locks 1 -b 64K "$s" && run 0 fsck "$s" || fail "minimal volume"

# ---- I/O errors (fault injection through BDEV_WRAP) ----------------------------
# mkfs failing at its Nth write or flush leaves either no volume (headers are
# invalidated first) or a complete one whose primary header fsck -y restores;
# fsck failing at its Nth read is an operational error (exit 8). Each failure
# is one line on stderr.
f=$T/f.img
truncate -s 64M "$f"
done_ok=0
for kind in write flush; do
	for n in $(seq 1 40); do
		[ "$kind" = flush ] && [ "$n" -gt 6 ] && break
		: >"$T/f.err"
		BDEV_WRAP="fault:$kind=$n" "$V" mkfs -f -q -H 2 -J 256K "$f" >/dev/null 2>"$T/f.err"
		rc=$?
		if [ "$rc" = 0 ]; then
			done_ok=1
			break
		fi
		[ "$rc" = 1 ] && [ "$(wc -l <"$T/f.err")" = 1 ] ||
			fail "mkfs with $kind fault $n: exit $rc, stderr: $(head -2 "$T/f.err")"
		"$V" fsck "$f" >"$T/out" 2>"$T/err"
		case $? in
		8) grep -q "no libvmfs volume" "$T/err" || fail "fsck after $kind fault $n: $(cat "$T/err")" ;;
		0) ;;
		4) "$V" fsck -y "$f" >/dev/null 2>&1
		   "$V" fsck "$f" >/dev/null 2>&1 || fail "fsck -y did not restore after $kind fault $n" ;;
		*) fail "fsck after mkfs $kind fault $n exited $?" ;;
		esac
	done
done
[ "$done_ok" = 1 ] || fail "mkfs never completed under the write fault loop"
run 0 fsck "$f"
for n in 1 2 5 20 100; do
	BDEV_WRAP="fault:read=$n" "$V" fsck "$f" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" != 8 ] && [ "$rc" != 0 ]; then
		fail "fsck with read fault $n exited $rc"
	elif [ "$rc" = 8 ] && [ "$(wc -l <"$T/err")" != 1 ]; then
		fail "fsck with read fault $n: not one line on stderr: $(head -3 "$T/err")"
	fi
done

# ---- progress on a large sparse image ------------------------------------------
big=$T/big.img
truncate -s 64G "$big"
# not a terminal: no progress in logs (was a line per 25 %)
run 0 mkfs "$big" && [ ! -s "$T/err" ] || fail "mkfs wrote progress into a log: $(head -3 "$T/err")"
# a terminal (script(1)): one line redrawn in place up to 100 %
if command -v script >/dev/null; then
	script -qec "$V mkfs -f $big" /dev/null >"$T/pty" 2>&1 || fail "mkfs on a terminal: $(tail -3 "$T/pty")"
	grep -q $'\rmkfs: zeroing metadata  *[0-9]*%' "$T/pty" || fail "no progress on a terminal: $(head -c 300 "$T/pty")"
	grep -q "100%" "$T/pty" || fail "progress never reaches 100%"
	[ "$(grep -c '^mkfs: ' "$T/pty")" -le 1 ] || fail "mkfs progress is not one line on a terminal"
fi
[ "$(du -k "$big" | cut -f1)" -lt 65536 ] || fail "64 GiB image not sparse after mkfs"
run 0 fsck "$big" || fail "fsck on the 64 GiB image"

[ "$fails" = 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "native tools: all checks passed"
