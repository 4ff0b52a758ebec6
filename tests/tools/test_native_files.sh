#!/usr/bin/env bash
# vmfsctl file commands on native volumes (mkdir, cp in/out/between, ls,
# stat, cat, tree, rm, df): results, JSON output, the error of each misuse,
# two hosts copying into one volume at once, and fsck clean at the end. At
# 512 B and 4 KiB logical sectors.
set -u
V=${VMFSCTL:?VMFSCTL not set}
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/native-files.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
fails=0
checks=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# run EXPECTED_RC CMD...: runs vmfsctl, keeps stdout/stderr in $T/out $T/err.
run() {
	local want=$1 rc
	shift
	checks=$((checks + 1))
	"$V" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "vmfsctl $* exited $rc, expected $want"
		sed 's/^/  | /' "$T/out" "$T/err" | head -20 >&2
		return 1
	fi
	return 0
}

# expect_err PATTERN: the last command's stderr is one line matching PATTERN.
expect_err() {
	checks=$((checks + 1))
	if [ "$(wc -l <"$T/err")" != 1 ] || ! grep -q -- "$1" "$T/err"; then
		fail "expected one error line matching '$1', got: $(cat "$T/err")"
	fi
}

same() { # same FILE1 FILE2 WHAT
	checks=$((checks + 1))
	cmp -s "$1" "$2" || fail "$3: contents differ"
}

scenario() { # scenario URI-SUFFIX
	local sfx=$1 img="$T/vol.img" dev
	rm -f "$img"
	truncate -s 2G "$img"
	dev="$img$sfx"
	run 0 mkfs -q -H 8 -J 1M --hb-interval 250 --hb-timeout 2000 "$dev" || return

	# A small, a medium (sub-block / file block) and a sparse file.
	head -c 100 /dev/urandom >"$T/small"
	head -c 3000000 /dev/urandom >"$T/medium"
	truncate -s 0 "$T/sparse"
	printf 'head' >>"$T/sparse"
	truncate -s 40M "$T/sparse"
	printf 'tail' >>"$T/sparse"

	run 0 mkdir "$dev" /vms /vms/vm1
	run 1 mkdir "$dev" /vms && expect_err "/vms: File exists"
	run 1 mkdir "$dev" / && expect_err "/: File exists" # was "Device or resource busy"
	run 1 mkdir "$dev" /nope/x && expect_err "No such file or directory"
	run 0 cp "$T/small" "$dev:/vms/vm1/small"
	run 0 cp "$T/medium" "$dev:/vms/vm1/medium"
	run 0 cp "$T/sparse" "$dev:/vms/vm1/sparse"
	run 0 cp "$dev:/vms/vm1/medium" "$dev:/vms/copy-of-medium"

	for f in small medium sparse; do
		run 0 cp "$dev:/vms/vm1/$f" "$T/out-$f" && same "$T/$f" "$T/out-$f" "cp out $f"
		"$V" cat "$dev" "/vms/vm1/$f" >"$T/cat-$f" && same "$T/$f" "$T/cat-$f" "cat $f"
	done
	run 0 cat "$dev" /vms/copy-of-medium && same "$T/medium" "$T/out" "cp between"

	run 0 ls "$dev" /vms/vm1
	checks=$((checks + 1))
	[ "$(tr '\n' ' ' <"$T/out")" = "medium small sparse " ] || fail "ls: $(cat "$T/out")"
	run 0 ls -l --json "$dev" /vms/vm1
	python3 - "$T/out" <<'PY' || fail "ls --json"
import json, sys
e = {x["name"]: x for x in json.load(open(sys.argv[1]))}
assert e["medium"]["size"] == 3000000 and e["medium"]["type"] == "file", e
assert e["sparse"]["size"] == 40 * 2**20 + 4, e
# thin: 40 MiB of zeroes cost at most two file blocks (head and tail)
assert e["sparse"]["blocks"] * 512 <= 2 * 2**20 + 2**16, e["sparse"]
PY
	run 0 stat --json "$dev" /vms/vm1/small
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["size"]==100 and d["nlink"]==1, d' "$T/out" || fail "stat --json"
	run 0 tree "$dev" /
	checks=$((checks + 1))
	grep -q "2 directories, 4 files" "$T/out" || fail "tree: $(tail -1 "$T/out")"
	run 0 tree "$dev" /vms # singular as tree(1) (was "1 directories")
	grep -q "^1 directory, 4 files$" "$T/out" || fail "tree /vms: $(tail -1 "$T/out")"
	run 0 df --json "$dev"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))[0]; assert d["format"]=="native" and 0 < d["blocks_free"] < d["blocks"], d' "$T/out" || fail "df --json"

	# cp shows progress on a terminal only, and not with -q.
	if command -v script >/dev/null; then
		VMFS_PROGRESS_MS=0 script -qec "$V cp $dev:/vms/vm1/medium $T/p1" /dev/null >"$T/pty" 2>&1
		grep -q "cp: 2.9 MiB of 2.9 MiB (100%)" "$T/pty" || fail "cp: no progress on a terminal: $(cat "$T/pty")"
		VMFS_PROGRESS_MS=0 script -qec "$V cp -q $T/medium $dev:/vms/p2" /dev/null >"$T/pty" 2>&1
		! grep -q "cp:" "$T/pty" || fail "cp -q showed progress: $(cat "$T/pty")"
		run 0 rm "$dev" /vms/p2
	fi
	# mkfile -t eager (minutes for a VM disk) too; its file is whole and zero.
	if command -v script >/dev/null; then
		VMFS_PROGRESS_MS=0 script -qec "$V mkfile -t eager $dev /vms/pe 72M" /dev/null >"$T/pty" 2>&1
		grep -q "mkfile: 72.0 MiB of 72.0 MiB (100%)" "$T/pty" || fail "mkfile -t eager: no progress on a terminal: $(cat "$T/pty")"
		grep -q "mkfile: 64.0 MiB of 72.0 MiB" "$T/pty" || fail "mkfile -t eager: no intermediate progress: $(cat "$T/pty")"
		"$V" cat "$dev" /vms/pe | cmp -s - <(head -c 72M /dev/zero) || fail "mkfile -t eager with progress: not 72M of zeroes"
		run 0 rm "$dev" /vms/pe
		VMFS_PROGRESS_MS=0 script -qec "$V mkfile -q -t eager $dev /vms/pe 8M" /dev/null >"$T/pty" 2>&1
		! grep -q "mkfile:" "$T/pty" || fail "mkfile -q showed progress: $(cat "$T/pty")"
		run 0 rm "$dev" /vms/pe
	fi
	VMFS_PROGRESS_MS=0 "$V" cp "$T/medium" "$dev:/vms/p3" 2>"$T/err" && [ ! -s "$T/err" ] ||
		fail "cp wrote progress into a log: $(cat "$T/err")"
	run 0 rm "$dev" /vms/p3

	# The commands that only read join nothing and write nothing.
	sum=$(md5sum <"$img")
	for c in "info" "hosts" "locks" "ls -l" "stat" "cat" "tree" "df" "fsck -n"; do
		case $c in
		stat | cat) "$V" $c "$dev" /vms/vm1/small >/dev/null 2>&1 || fail "$c" ;;
		"ls -l" | tree) "$V" $c "$dev" /vms >/dev/null 2>&1 || fail "$c" ;;
		*) "$V" $c "$dev" >/dev/null 2>&1 || fail "$c" ;;
		esac
		[ "$(md5sum <"$img")" = "$sum" ] || fail "vmfsctl $c wrote to the volume"
	done
	run 1 rm "$dev" /vms && expect_err "Is a directory"
	run 1 rm -d "$dev" /vms && expect_err "Directory not empty"
	run 1 cat "$dev" /vms/missing && expect_err "/vms/missing: No such file or directory"
	run 1 cp "$T/small" "$dev:/nope/x" && expect_err "No such file or directory"
	run 1 cp "$T" "$dev:/dir" && expect_err "Is a directory"
	run 2 rm "$dev" && expect_err "expected DEVICE PATH"
	run 2 mkdir -m 8 "$dev" /x && expect_err "bad mode"

	# Thin, lazily zeroed and eagerly zeroed thick files (VM disks).
	for t in thin lazy eager; do
		run 0 mkfile -t $t "$dev" /vms/$t 64M
		run 0 stat --json "$dev" /vms/$t
		python3 -c '
import json, sys
d, kind = json.load(open(sys.argv[1])), sys.argv[2]
assert d["size"] == 64 << 20, d
alloc = d["blocks"] * 512
assert (alloc == 0) if kind == "thin" else (alloc >= 64 << 20), (kind, d)' "$T/out" $t || fail "mkfile -t $t"
		"$V" cat "$dev" /vms/$t | cmp -s - <(head -c 64M /dev/zero) || fail "mkfile -t $t: not all zeroes"
		checks=$((checks + 2))
	done
	run 1 mkfile -t lazy "$dev" /vms/huge 100G && expect_err "No space left on device"
	run 1 stat "$dev" /vms/huge && expect_err "No such file or directory"
	run 1 mkfile "$dev" /vms/thin 1M && expect_err "File exists"
	run 2 mkfile -t thick "$dev" /vms/x 1M && expect_err "bad type"
	run 0 rm "$dev" /vms/thin /vms/lazy /vms/eager

	# Two hosts copy into one directory at once: both files land, intact.
	for h in 1 2; do
		"$V" cp "$T/medium" "$dev:/vms/host$h" 2>"$T/err$h" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || fail "concurrent cp (pid $p): $(cat "$T"/err1 "$T"/err2)"
	done
	pids=()
	for h in 1 2; do
		"$V" cat "$dev" "/vms/host$h" >"$T/cat-host$h" && same "$T/medium" "$T/cat-host$h" "concurrent cp host$h"
	done

	run 0 rm "$dev" /vms/vm1/small /vms/vm1/medium /vms/vm1/sparse /vms/copy-of-medium /vms/host1 /vms/host2
	run 0 rm -d "$dev" /vms/vm1 /vms
	run 0 ls "$dev" /
	checks=$((checks + 1))
	[ ! -s "$T/out" ] || fail "volume not empty after rm: $(cat "$T/out")"
	run 0 fsck "$dev"
}

scenario ""
scenario "?sector=4096"
echo "native_files: $checks checks, $fails failures"
[ "$fails" = 0 ]
