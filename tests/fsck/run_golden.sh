#!/usr/bin/env bash
# run_golden.sh KIND: one fsck golden test (see CMakeLists.txt).
#   1. fsck_golden make KIND IMG      fresh volume + files + the damage
#   2. vmfsctl fsck -n IMG            must exit 4 and leave the image as it was
#   3. on a copy: fsck -p (exit 1 or 4), fsck -y, clean, files intact
#   4. vmfsctl fsck -y IMG            output (image path as IMG, exit code
#                                     appended) must equal expected/KIND.out
#   5. vmfsctl fsck -n IMG            must be clean (exit 0)
#   6. fsck_golden verify KIND IMG    files the damage did not touch are intact
# FSCK_UPDATE=1 writes expected/KIND.out instead of comparing (review it!).
# run_golden.sh --complete: every kind has an expected output and vice versa.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${FSCK_GOLDEN:?}"
if [ "${1:-}" = --complete ]; then
	diff <("$FSCK_GOLDEN" list | sort) <(ls "$here/expected" | sed 's/\.out$//' | sort) ||
		{ echo "FAIL: kinds and expected outputs differ"; exit 1; }
	echo "PASS: $("$FSCK_GOLDEN" list | wc -l) kinds, each with its expected output"
	exit 0
fi
: "${VMFSCTL:?}"
kind=$1
tmp=${VMFS_TEST_TMP:-/tmp}/fsck-golden-$kind
rm -rf "$tmp" && mkdir -p "$tmp"
img=$tmp/img
fail() { echo "FAIL [$kind]: $*"; exit 1; }

"$FSCK_GOLDEN" make "$kind" "$img" || fail "make"
md5_before=$(md5sum <"$img")
"$VMFSCTL" fsck -n "$img" >"$tmp/n1" 2>&1
rc=$?
[ $rc = 4 ] || { cat "$tmp/n1"; fail "fsck -n on the damaged image exited $rc, not 4"; }
[ "$(md5sum <"$img")" = "$md5_before" ] || fail "fsck -n changed the image"

# -p on a copy: only safe repairs (exit 1 or 4), after which -y still
# reaches a clean volume with every intact file.
cp --sparse=always "$img" "$tmp/p.img"
"$VMFSCTL" fsck -p "$tmp/p.img" >"$tmp/p" 2>&1
rc=$?
{ [ $rc = 1 ] || [ $rc = 4 ]; } || { cat "$tmp/p"; fail "fsck -p exited $rc"; }
"$VMFSCTL" fsck -y "$tmp/p.img" >"$tmp/py" 2>&1
"$VMFSCTL" fsck -n "$tmp/p.img" >"$tmp/pn" 2>&1 || { cat "$tmp/p" "$tmp/py" "$tmp/pn"; fail "-p then -y: not clean"; }
"$FSCK_GOLDEN" verify "$kind" "$tmp/p.img" || { cat "$tmp/p" "$tmp/py"; fail "-p then -y: intact files changed"; }
rm -f "$tmp/p.img"

"$VMFSCTL" fsck -y "$img" >"$tmp/y" 2>&1
rc=$?
# fsck's own host (random UUID, so a random slot) may reuse a freed slot:
# the count of used slots is not part of the golden output, nor its slot
# and the time in the note of a recovery it made.
{ sed -e "s#$img#IMG#g" -e 's/[0-9]* heartbeat slots used/N heartbeat slots used/' \
	-e 's/recovered by \(.*\) (slot [0-9]*) at [0-9-]* [0-9:]* UTC/recovered by \1 (slot S) at TIME/' "$tmp/y"
  echo "exit $rc"; } >"$tmp/y.norm"
if [ "${FSCK_UPDATE:-0}" = 1 ]; then
	cp "$tmp/y.norm" "$here/expected/$kind.out"
	echo "updated expected/$kind.out"
else
	diff -u "$here/expected/$kind.out" "$tmp/y.norm" || fail "fsck -y output differs"
fi
[ $rc = 1 ] || fail "fsck -y exited $rc, not 1 (errors corrected)"

"$VMFSCTL" fsck -n "$img" >"$tmp/n2" 2>&1
rc=$?
[ $rc = 0 ] || { cat "$tmp/n2"; fail "second fsck not clean (exit $rc)"; }
"$FSCK_GOLDEN" verify "$kind" "$img" || fail "intact files changed or volume unusable"
"$VMFSCTL" fsck -n "$img" >"$tmp/n3" 2>&1 || { cat "$tmp/n3"; fail "fsck after use not clean"; }
rm -rf "$tmp"
echo "PASS [$kind]"
